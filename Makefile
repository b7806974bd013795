# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SHARED := ../shared/data/videos/people

.PHONY: demo demo-real study-people test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/synthswap demo --out demo_out

# The same job on real people videos: 10 photos of d6 as the subject, d9 as the destination, with the
# shipped GAN prior and pretrained swap model (see README for its measured time).
demo-real: $(STAMP)
	@test -d $(SHARED) || { echo "demo-real needs ../shared/data (real videos); it is not here"; exit 1; }
	$(BIN)/synthswap run --subject $(SHARED)/d6.mp4 --subject-every-n 100 --subject-max-frames 10 \
		--video $(SHARED)/d9.mp4 --every-n 2 --out demo_real/out.mp4 \
		--directions-n 1000 --synthetic 200 --swap-minutes 12

# The study across people (issue 23): many hours on CPUs, so run it in the background and again
# after any stop: it resumes from its ledger, docs/study/ledger.csv (commit the ledger as it grows).
study-people: $(STAMP)
	@test -d $(SHARED) || { echo "study-people needs ../shared/data (real videos); it is not here"; exit 1; }
	$(BIN)/synthswap study --pair $(SHARED)/d9.mp4 $(SHARED)/d6.mp4 --pair $(SHARED)/d14.mp4 $(SHARED)/d3.mp4 \
		--pair $(SHARED)/d10.mp4 $(SHARED)/d20.mp4 --pair $(SHARED)/d20.mp4 $(SHARED)/d14.mp4 \
		--k 1,2,3,5 --seeds 0,1 --swap-steps 400 --threads 2 --quiet \
		--out runs/people --ledger docs/study/ledger.csv --resume

# The whole suite, with the 25 slowest tests listed at the end.
test: $(STAMP)
	$(BIN)/pytest -q --durations=25

# The edit-test loop: every module, without the tests that train or run whole jobs (marked slow).
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow" --durations=10

# ruff on the code and tests; mypy on the core packages (pyproject.toml, [tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# Speed figures on real data from ../shared (see docs/benchmarks.md); minutes, not a test.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_extract.py --frames 300 --size 256
	$(BIN)/python benchmarks/bench_manifest.py --faces 1000,5000,20000
	$(BIN)/python benchmarks/bench_swap.py --threads 2 --steps 4
	$(BIN)/python benchmarks/bench_precision.py --threads 2
	$(BIN)/python benchmarks/bench_convert.py --threads 2 --frames 150
	$(BIN)/python benchmarks/bench_identity.py --threads 1 2 --batches 1 8 32
	$(BIN)/python benchmarks/watermark_invisible.py --timing
	test -d bench_work/d6_64 || $(BIN)/synthswap extract $(SHARED)/d6.mp4 --out bench_work/d6_64 --size 64 --every-n 4 --quiet
	$(BIN)/python benchmarks/bench_gan.py --data bench_work/d6_64 --resolution 64 --config cpu --batch 32 --steps 4 --threads 2

clean:
	rm -rf demo_out demo_real bench_work .pytest_cache
