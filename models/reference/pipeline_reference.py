#!/usr/bin/env python3
"""Reference pipeline for `edge-agent bench`: the way a Python team would write the edge loop with the same
models, on the same video and the same frames:

    cv2.VideoCapture (FFmpeg decode, BGR) -> YOLOX-Nano letterbox + onnxruntime + decode + NMS, every frame

Prints per-stage milliseconds and, as its last line, `ref_fps=<frames/s> infer_share=<fraction>`.
Usage: pipeline_reference.py MODEL VIDEO MAX_FRAMES THREADS
"""
import sys
import time

import cv2
import onnxruntime as ort

from yolox_reference import detect


def main():
    model, video, max_frames, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(model, opts)
    capture = cv2.VideoCapture(video)
    frames, decode_s, detect_s = 0, 0.0, 0.0
    started = time.perf_counter()
    while frames < max_frames:
        t0 = time.perf_counter()
        ok, img = capture.read()
        t1 = time.perf_counter()
        if not ok:
            break
        detect(session, img)
        t2 = time.perf_counter()
        decode_s += t1 - t0
        detect_s += t2 - t1
        frames += 1
    total = time.perf_counter() - started
    print(f"reference: {frames} frames, decode {1000 * decode_s / max(frames, 1):.1f} ms/frame, "
          f"detect (pre + inference + post) {1000 * detect_s / max(frames, 1):.1f} ms/frame")
    print(f"ref_fps={frames / total:.2f} infer_share={detect_s / total:.3f}")


if __name__ == "__main__":
    main()
