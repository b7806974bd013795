"""`synthswap serve`: a local web app over `synthswap run` (see app.py for the routes).

    jobs.py      the job queue and uploads in SQLite, one folder per job
    uploads.py   receiving and checking one uploaded file
    options.py   the form's settings (RunOptions' fields) and a job's job.json
    worker.py    running queued jobs one at a time, each in its own process
    progress.py  a job's stages, training progress and previews, read from run's own files
    app.py       the HTTP API, the file routes and the request guard
    static/      the page (one HTML file, one script, one style sheet)
"""
