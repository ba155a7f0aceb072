# The two set-up commands of the README.
.PHONY: serve test bench

serve:  ## install everything, then run the embedded default (CPU, bundled offline models) on :8000
	scripts/install.sh
	.venv/bin/falante serve

test:  ## install with the test tools, then run every test (fast, model and browser tiers)
	scripts/install.sh --dev
	.venv/bin/python -m pytest -q -ra

bench:  ## every benchmark, one after the other (~45 min on 2 cores); figures land in docs/bench/*.json
	mkdir -p docs/bench
	.venv/bin/python scripts/bench_asr.py --json docs/bench/asr.json
	.venv/bin/python scripts/bench_gates.py --json docs/bench/gates.json
	.venv/bin/python scripts/bench_turns.py --out docs/bench/turns.json
	.venv/bin/python scripts/bench_voice.py --clips 12 --compare llm.kind=vllm --out docs/bench/voice.json
	.venv/bin/python scripts/bench_voice.py --clips 12 --compare chat.llm_waits_for_first_audio=false \
		--compare chat.first_clause_words=50 --out docs/bench/voice_pacing.json
	.venv/bin/python scripts/bench_tts.py --json docs/bench/tts.json
	.venv/bin/python scripts/av_sync.py --json docs/bench/av_sync.json
	.venv/bin/python scripts/eval_llm.py --backend vllm llama-cpp llama-cpp@bundled:qwen2.5-1.5b-instruct \
		--json docs/bench/eval_llm.json
	.venv/bin/python scripts/bench_llm.py --backend vllm --sessions 1 2 4 --json docs/bench/llm_vllm.json
	.venv/bin/python scripts/bench_llm.py --backend llama-cpp --sessions 1 2 4 --json docs/bench/llm_llamacpp.json
	.venv/bin/python scripts/bench_load.py --llm llama-cpp --sessions 1 2 4 6 8 --turns 4 --out docs/bench/load_llamacpp.json
	.venv/bin/python scripts/bench_load.py --llm vllm --sessions 1 2 4 6 8 --turns 4 --out docs/bench/load_vllm.json
	.venv/bin/python scripts/bench_load.py --plot docs/bench/load.png docs/bench/load_llamacpp.json docs/bench/load_vllm.json
