"""`synthswap serve`: a local web app over `synthswap run`. It imports nothing from `synthswap.cli`.

    app.py       Settings and create_app: the route table, the app's state, start and stop
    routes.py    the JSON API: form settings, uploads, the job queue, one job's stages and progress
    submit.py    checking a submitted job (the same checks as `synthswap run`) and queueing it
    pages.py     the page and the files a job made (a fixed list, placed by the stage declarations)
    guard.py     the request guard (host, token, CSRF, body size and pace), the security headers, errors as JSON
    listen.py    uvicorn with a header timeout and a connection limit
    jobs.py      the job queue and uploads in SQLite, one folder per job
    uploads.py   receiving and checking one uploaded file
    options.py   the form's settings (RunOptions' fields, checked by their declarations) and job.json
    worker.py    running queued jobs one at a time, each in its own process
    progress.py  a job's stages (stages.RUN_STAGES), training progress and previews, from run's own files
    static/      the page (one HTML file, one script, one style sheet)
"""
