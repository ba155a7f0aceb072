"""Build a tiny random-weight Piper voice (ONNX + .onnx.json) offline from piper's own VITS code, for tests.

Why: no pt_BR Piper voice is installable here; a random voice exercises the real loading, phoneme-id, alignment
and synthesis paths of PiperSynthesizer (its audio is noise, so no intelligibility is asserted).
"""

from __future__ import annotations

import json
from pathlib import Path


def build_random_piper_voice(out_dir: Path, *, speakers: int = 1, seed: int = 0) -> Path:
    import torch
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP
    from piper.train.vits.models import SynthesizerTrn

    torch.manual_seed(seed)
    n_vocab = max(i for ids in DEFAULT_PHONEME_ID_MAP.values() for i in ids) + 1
    model = SynthesizerTrn(
        n_vocab=n_vocab, spec_channels=513, segment_size=32, inter_channels=16, hidden_channels=16,
        filter_channels=32, n_heads=2, n_layers=1, kernel_size=3, p_dropout=0.0, resblock="2",
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),), upsample_rates=(8, 8, 4),
        upsample_initial_channel=32, upsample_kernel_sizes=(16, 16, 8), n_speakers=speakers,
        gin_channels=8 if speakers > 1 else 0, use_sdp=False,
    ).eval()

    def infer_forward(text, text_lengths, scales, sid=None):
        return model.infer(text, text_lengths, noise_scale=scales[0], length_scale=scales[1],
                           noise_scale_w=scales[2], sid=sid)[0].unsqueeze(1)

    model.forward = infer_forward  # the same wrapper piper.train.export_onnx uses
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "pt_BR-random-tiny.onnx"
    sid = torch.LongTensor([0]) if speakers > 1 else None
    args = (torch.randint(0, n_vocab, (1, 20)), torch.LongTensor([20]), torch.FloatTensor([0.667, 1.0, 0.8]), sid)
    with torch.no_grad():
        torch.onnx.export(model, args, str(onnx_path), opset_version=15, dynamo=False,
                          input_names=["input", "input_lengths", "scales", "sid"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch_size", 1: "phonemes"}, "input_lengths": {0: "batch_size"},
                                        "output": {0: "batch_size", 2: "time"}})
    config = {
        "audio": {"sample_rate": 22050}, "espeak": {"voice": "pt-br"}, "phoneme_type": "espeak",
        "num_symbols": n_vocab, "num_speakers": speakers, "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8}, "hop_length": 256,
        "speaker_id_map": {f"speaker{i}": i for i in range(speakers)} if speakers > 1 else {},
    }
    (out_dir / "pt_BR-random-tiny.onnx.json").write_text(json.dumps(config, ensure_ascii=False))
    return onnx_path
