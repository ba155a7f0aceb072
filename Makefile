# The two set-up commands of the README.
.PHONY: serve test

serve:  ## install everything, then run the embedded default (CPU, bundled offline models) on :8000
	scripts/install.sh
	.venv/bin/falante serve

test:  ## install with the test tools, then run every test (fast, model and browser tiers)
	scripts/install.sh --dev
	.venv/bin/python -m pytest -q -ra
