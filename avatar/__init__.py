"""The avatar: pt-BR phonemes → Oculus visemes + ARKit blendshapes on the output-audio clock.

Public API: `VISEMES`, `Timeline` (one per response), `expression_for(text)`, `frames_to_wire(frames)`.
Pure Python + numpy, no model weights: the browser renders the face from these frames.
"""

from __future__ import annotations

from collections.abc import Iterable

from falante.types import AvatarFrame

from .expression import EXPRESSIONS, expression_for
from .timeline import Timeline
from .visemes import ARKIT_MOUTH_SHAPES, VISEMES, blendshapes_for, mouth_open, split_ipa, viseme_weights

__all__ = [
    "ARKIT_MOUTH_SHAPES", "EXPRESSIONS", "VISEMES", "Timeline", "blendshapes_for", "expression_for",
    "frames_to_wire", "mouth_open", "split_ipa", "viseme_weights",
]


def frames_to_wire(frames: Iterable[AvatarFrame]) -> list[dict]:
    """JSON-ready frames for `falante.avatar.frames`: weights rounded to 3 decimals, zero blendshapes dropped."""
    out = []
    for f in frames:
        shapes = {k: round(float(v), 3) for k, v in sorted(f.blendshapes.items()) if round(float(v), 3) > 0.0}
        out.append({"sample": int(f.sample), "visemes": [round(float(v), 3) for v in f.visemes],
                    "blendshapes": shapes, "expression": f.expression})
    return out
