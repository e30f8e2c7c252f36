"""Burned-in text search on real knees (false flags) and on framed radiographs with a text line (found).

Run:  .venv/bin/python tests/benchmarks/text_marks_real.py [--data ../shared/data/knee_kl_valtest] [--seed 0]

Prints, for every real knee of --data: the time per image and how many reach the flag's
threshold (4 marks); then, for framed radiographs made from every 25th knee (the knee
inside a dark collimated frame, resized to 448, 1024 and 2048 px, a line of identifying
text written on the frame with OpenCV), the share found, and false flags on the same
frames without text. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from curate.imaging import read_image
from curate.quality.text_marks import text_marks

TEXTS = ["DOE^JOHN 19610415", "ACC 998877", "R PA STANDING", "2011-03-05 KNEE", "ST BRIGID HOSP", "ID 123-45-6789"]


def framed(knee: np.ndarray, text: str, rng: np.random.Generator, side: int) -> np.ndarray:
    pad = int(knee.shape[0] * 0.3)
    out = np.pad(knee, pad, constant_values=int(rng.integers(0, 40))).astype(float)
    out = cv2.resize(out, (side, side), interpolation=cv2.INTER_CUBIC)
    out = np.clip(out + rng.normal(0, 3, out.shape), 0, 255).astype(np.uint8)
    frame = int(pad * side / (knee.shape[0] + 2 * pad))
    if text:
        scale = side / 600 * (0.5 + rng.random() * 0.4)
        x = int(rng.integers(4, side // 3))
        y = int(rng.choice([rng.integers(int(0.6 * frame) + 8, frame - 4), rng.integers(side - frame + frame // 2, side - 4)]))
        cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, max(1, round(side / 700)), cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/knee_kl_valtest")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    paths = sorted(args.data.rglob("*.png"))
    knees = [read_image(p).as_uint8() for p in paths]
    start = time.perf_counter()
    marks = np.array([text_marks(k) for k in knees])
    per_image = (time.perf_counter() - start) / len(knees) * 1e3
    print(f"{len(knees):,} real knees: {per_image:.2f} ms each; >= 4 marks: {(marks >= 4).sum()}; max {marks.max()}")
    for side in (448, 1024, 2048):
        found = [text_marks(framed(k, TEXTS[i % len(TEXTS)], rng, side)) >= 4 for i, k in enumerate(knees[::25])]
        plain = [text_marks(framed(k, "", rng, side)) >= 4 for k in knees[::25]]
        print(f"{side:>4} px frames: text found in {np.mean(found):.3f} of {len(found)}; "
              f"flagged without text: {sum(plain)} of {len(plain)}")


if __name__ == "__main__":
    main()
