"""`synthswap serve` in a real browser: headless Chromium (Debian's package) driven by Playwright.

One tiny job on real faces, from the form to the played video and the opened report, with a
server restart in the middle of its training; bad files refused on the page. Screenshots of the
main screens go to the test's temporary folder, or to $SYNTHSWAP_SCREENSHOTS when it is set: they
show frames of ../shared/data, which must not enter the repository."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from serve_helpers import TINY, Server, not_media, subject_photos

CHROMIUM = Path("/usr/bin/chromium")

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
XSS_NAME = "<img src=x onerror=alert(1)>.jpg"


def screenshot(page, folder: Path, name: str) -> None:
    """A full-page PNG, reduced to 128 colours so that it stays small: in $SYNTHSWAP_SCREENSHOTS if set,
    else in `folder` (the test's temporary one)."""
    from PIL import Image

    shots = Path(os.environ.get("SYNTHSWAP_SCREENSHOTS") or folder)
    shots.mkdir(parents=True, exist_ok=True)
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as img:
        img.convert("RGB").quantize(128).save(path, optimize=True)


@pytest.fixture()
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.mark.slow
def test_page_runs_a_job_through_a_restart_plays_the_video_and_opens_the_report(shared_data, tmp_path, browser):
    data = tmp_path / "data"
    server = Server(data, None, "--max-upload-mb", "1").start()
    try:
        _run_in_browser(shared_data, tmp_path, browser, server)
    finally:
        if server.proc.poll() is None:
            server.crash()


def _run_in_browser(shared_data: Path, tmp_path: Path, browser, server: Server) -> None:
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    page.goto(f"{server.url}/?token={server.token}")  # the printed link: the token goes into a cookie
    expect(page.locator("#option-fields .option").first).to_be_attached()  # options loaded

    # An empty form, a file that is not an image, a video over the (test's) 1 MB limit.
    page.click("#submit")
    expect(page.locator("#form-message")).to_contain_text("The form is incomplete")
    page.set_input_files("#subject-files", str(not_media(tmp_path / "notes.jpg")))
    expect(page.locator("#subject-list li.bad")).to_contain_text("notes.jpg: not a readable image")
    page.set_input_files("#video-file", str(shared_data / "videos/people/d0.mp4"))
    expect(page.locator("#video-list li.bad")).to_contain_text("over the limit of 1.0 MB")
    screenshot(page, tmp_path, "bad_input")
    page.locator("#subject-list li.bad button").click()
    assert list((server.data / "uploads").iterdir()) == []  # nothing of the refused files stays

    # The real job: three photos (one with a name that is HTML), the GRID clip, tiny budgets.
    photos = subject_photos(shared_data, tmp_path / "photos")
    odd = photos[0].with_name(XSS_NAME)
    shutil.copyfile(photos[0], odd)
    page.set_input_files("#subject-files", [str(odd), *map(str, photos[1:])])
    page.set_input_files("#video-file", str(shared_data / "videos/grid/bbaf2n.mpg"))
    expect(page.locator("#subject-list li.good")).to_have_count(3, timeout=60_000)
    expect(page.locator("#video-list li.good")).to_contain_text("video 360x288")
    expect(page.locator("#face-pick")).to_be_hidden()  # one person in it: nothing to choose
    expect(page.locator("#subject-list li.good .name").first).to_have_text(XSS_NAME)  # shown as text
    # each photo shows the face found in it
    expect(page.locator("#subject-list li.good img.thumb")).to_have_count(3)
    page.wait_for_function("() => [...document.querySelectorAll('#subject-list img.thumb')]"
                           ".every(i => i.complete && i.naturalWidth === 96)")
    # Presets with their time on this machine; a preset sets the advanced settings.
    expect(page.locator("#preset-good")).to_be_checked()
    expect(page.locator("#estimate")).to_contain_text("on this machine")
    expect(page.locator("#estimate")).to_contain_text("3 subject faces")
    page.check("#preset-quick")
    page.click("#settings summary")
    expect(page.locator("#opt-engine")).to_have_value("warp")
    expect(page.locator("#opt-swap_minutes")).to_have_value("4")
    expect(page.locator("label[for=opt-swap_minutes]")).to_contain_text("Training time (minutes)")
    quick = page.locator("#preset-quick").locator("xpath=..").locator(".time")
    expect(quick).to_contain_text("about")
    for name, value in TINY.items():
        field = page.locator(f"#opt-{name}")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    expect(page.locator("#preset-custom-label")).to_be_visible()  # TINY is no preset
    screenshot(page, tmp_path, "new_job")
    page.click("#submit")
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#d-title")).to_contain_text(XSS_NAME)

    # Training: the running stage, its progress bar with steps and rate, the kept synthetic faces.
    expect(page.locator("tr.stage.running td").first).to_have_text("swap train", timeout=300_000)
    expect(page.locator("#d-progress-text")).to_contain_text("/ 16 steps", timeout=120_000)
    expect(page.locator("#d-synth-fig")).to_be_visible()
    screenshot(page, tmp_path, "training")

    # Restart the server in the middle of training: the page says so, then follows the resumed job.
    assert server.stop() == "synthswap serve: stopped; job 1 goes back to the queue and resumes at the next start"
    expect(page.locator("#conn")).to_be_visible()
    server.start()
    expect(page.locator("#conn")).to_be_hidden(timeout=15_000)  # polls back off to one in 5 s while it is down
    expect(page.locator("#d-state")).to_have_text("done", timeout=600_000)
    page.click("#d-log-box summary")
    expect(page.locator("#d-log")).to_contain_text("[swap train] resuming")
    # the budget is the job's: the resumed stage trains what was left of its minutes (after kill -9 too:
    # tests/test_serve.py)
    expect(page.locator("#d-log")).to_contain_text("of its 4 minutes were spent before")  # Quick look's
    expect(page.locator("#d-log")).to_contain_text("[extract subject] up to date, skipped")

    # The result: the video plays, the preview and loss curve are there, the report opens.
    played = page.evaluate("""async () => {
        const v = document.getElementById('d-video');
        v.muted = true;
        await v.play();
        await new Promise((r) => setTimeout(r, 1500));
        return {time: v.currentTime, width: v.videoWidth, error: v.error && v.error.code};
    }""")
    assert played["error"] is None and played["time"] > 0.2 and played["width"] == 360, played
    expect(page.locator("#d-preview-fig")).to_be_visible()
    expect(page.locator("#d-loss-fig")).to_be_visible()
    expect(page.locator("#d-downloads a")).to_have_count(5)
    page.click("#d-settings-box summary")
    expect(page.locator("#d-settings tr", has_text="Training steps (at most)")).to_contain_text("16")
    page.evaluate("document.getElementById('d-video').pause()")
    expect(page).to_have_title("synthswap · job #1 done")
    screenshot(page, tmp_path, "done")
    # At a phone's width the open job fits the screen: one column, nothing wider than 390 px.
    page.set_viewport_size({"width": 390, "height": 844})
    widest = page.evaluate("() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    assert widest <= 390, widest
    screenshot(page, tmp_path, "phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    with page.expect_popup() as popup:
        page.click("#d-report")
    report = popup.value
    report.wait_for_load_state()
    expect(report.locator("h1")).to_contain_text("synthswap: out.mp4")
    expect(report.locator("h2").first).to_have_text("In plain words")
    assert report.locator("img").first.evaluate("i => i.naturalWidth") > 0
    screenshot(report, tmp_path, "report")
    # Downloaded and opened from the disk, away from the server: every picture is inside the file.
    with page.expect_download() as download:
        page.click("#d-downloads a:text('download out_report.html')")
    offline = tmp_path / "downloaded_report.html"
    download.value.save_as(offline)
    report.goto(offline.as_uri())
    expect(report.locator("h2", has_text="In plain words")).to_be_visible()
    sizes = report.locator("img").evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : -1)")
    assert len(sizes) == 3 and min(sizes) > 0, sizes
    assert dialogs == []  # the HTML in a file name never ran

    # The last job's settings come back with the page.
    page.reload()
    expect(page.locator("#opt-swap_steps")).to_have_value("16")
    expect(page.locator("#opt-engine")).to_have_value("warp")
    expect(page.locator("#preset-custom-label")).to_be_visible()


def test_page_opens_from_the_printed_link_and_pages_through_the_jobs(tmp_path, browser):
    """The token link sets the cookie and leaves the address; the list shows 50 jobs a page, and polls
    that find it unchanged get 304 (the page keeps what it drew)."""
    import sqlite3

    data = tmp_path / "data"
    server = Server(data).start()
    try:
        db = sqlite3.connect(data / "synthswap.sqlite")
        db.executemany("INSERT INTO jobs (name, state, created, options, inputs) VALUES (?, 'done', 0, '{}', '{}')",
                       [(f"old job {i}",) for i in range(1, 61)])
        db.commit()
        db.close()
        page = browser.new_page()
        statuses = []
        page.on("response", lambda r: statuses.append(r.status) if "/api/jobs" in r.url else None)
        page.goto(f"{server.url}/")
        assert "a token is required" in page.content()  # no token, no page: localhost too
        page.goto(f"{server.url}/?token={server.token}")
        assert page.url == f"{server.url}/"  # the token left the address for the cookie
        expect = sync_api.expect
        expect(page.locator("#jobs li")).to_have_count(50)
        expect(page.locator("#jobs li").first).to_contain_text("#60 old job 60")
        page.click("#jobs-older")
        expect(page.locator("#jobs li")).to_have_count(10)
        expect(page.locator("#jobs li").first).to_contain_text("#10 old job 10")
        page.wait_for_timeout(2500)
        assert 304 in statuses  # unchanged lists are not sent again
        page.click("#jobs-newest")
        expect(page.locator("#jobs li")).to_have_count(50)
        page.context.clear_cookies()  # as after a restart with a new token: the page says what to do
        expect(page.locator("#no-token")).to_be_visible()
        expect(page.locator("#jobs li")).to_have_count(50)  # and keeps what it showed
    finally:
        server.crash()


def test_page_offers_the_people_of_a_video_with_two(shared_data, tmp_path, browser):
    """A destination with two people (who change sides half-way) shows each person once, with how often
    they were seen; the one picked is the job's --face."""
    from media_helpers import GRID_CLIP, two_people

    video = tmp_path / "two people.mp4"
    two_people(shared_data / GRID_CLIP, shared_data / "videos/grid/lbax4n.mpg", video, [(0.9, 0.9)] * 6,
               change_sides_at=3)
    server = Server(tmp_path / "data").start()
    try:
        expect = sync_api.expect
        page = browser.new_page(viewport={"width": 390, "height": 844})  # and on a phone's screen
        page.goto(f"{server.url}/?token={server.token}")
        expect(page.locator("#option-fields .option").first).to_be_attached()
        page.set_input_files("#video-file", str(video))
        expect(page.locator("#face-pick")).to_be_visible(timeout=60_000)
        expect(page.locator("#face-options img")).to_have_count(2)
        assert page.locator("#face-options img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)") == [96, 96]
        expect(page.locator("#face-options")).to_contain_text("person 1 · in 6 of 6 sampled frames")
        page.click("#face-options label:has-text('person 2')")
        expect(page.locator("#opt-face")).to_have_value("person 2")
        expect(page.locator("#preset-good")).to_be_checked()  # the face is not a preset's setting
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        screenshot(page, tmp_path, "face_choice")
        page.locator("#video-list li button").click()  # the video removed: no faces to choose from
        expect(page.locator("#face-pick")).to_be_hidden()
        expect(page.locator("#opt-face")).to_have_value("")
    finally:
        server.crash()
