"""Frames per second on a 640x480 video, one thread: the shipped models (face, person) through `predict`.

    python benchmarks/video.py [--data ../shared/data] [--frames 60] [--out benchmarks/results]

For each shipped model a 640x480 MJPG video is made from its data set's test images (resized, each
shown for 3 frames), then predicted as `predict VIDEO --out /dev/null` does
(:func:`classic_loc.workflow.write_video_predictions`: decoding, detection, JSON Lines): the run's
frames per second, and the median milliseconds of the detection alone per frame. BLAS and OpenCV
on one thread. Writes ``video.json`` and ``video.md`` with the commit, whether the tree was clean
and the load average.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

if __name__ == "__main__":
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import cv2  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from _bench import git_state, load_average, machine  # noqa: E402

from classic_loc import load_dataset, pretrained  # noqa: E402
from classic_loc._fileio import atomic_write_text  # noqa: E402
from classic_loc.sources import frames  # noqa: E402
from classic_loc.workflow import write_video_predictions  # noqa: E402

SETS = {"face": "cmu_mit_faces", "person": "pennfudan"}
#: (row, shipped model, prediction settings): the face model as shipped scans a 2x level for faces of
#: 20-40 px (upsample "auto" fitted 2 on its data); with upsample 1 it finds faces from about 40 px
VARIANTS = (("face", "face", {}), ("face, --set upsample=1", "face", {"upsample": 1.0}), ("person", "person", {}))


def make_video(path, dataset, n_frames, size=(640, 480), fps=25):
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(n_frames):
        rgb = cv2.resize(dataset.image((i // 3) % len(dataset)), size, interpolation=cv2.INTER_AREA)
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CLASSIC_LOC_SHARED_DATA",
                                                     os.path.join(HERE, "..", "..", "shared", "data")))
    ap.add_argument("--frames", type=int, default=60, help="frames per video (default 60)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for video.json and video.md")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    tree, load0 = git_state(), load_average()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for row, name, settings in VARIANTS:
            video = os.path.join(tmp, f"{name}.avi")
            if not os.path.exists(video):
                make_video(video, load_dataset(os.path.join(args.data, SETS[name]), split="test"), args.frames)
            model = pretrained(name).set_params(**settings)
            model.detect(next(frames(video))[2])  # warm-up
            n, seconds = write_video_predictions(model, video, os.devnull)
            per_frame = []
            for _, _, image in frames(video):
                t0 = time.perf_counter()
                model.detect(image)
                per_frame.append((time.perf_counter() - t0) * 1000)
            rows.append({"model": row, "frames": n, "fps_end_to_end": n / seconds,
                         "detect_ms_median": statistics.median(per_frame)})
            print(f"{row}: {rows[-1]['fps_end_to_end']:.1f} frames/s end to end, "
                  f"{rows[-1]['detect_ms_median']:.1f} ms per frame to detect", file=sys.stderr)
    meta = {"commit": tree and tree["head"], "clean_tree": bool(tree) and not tree["changed_files"],
            "load_average": [load0, load_average()], "machine": machine(),
            "command": "python benchmarks/video.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "video.json"), json.dumps({"rows": rows, "meta": meta}, indent=2) + "\n")
    lines = ["# Video: frames per second at 640x480, one thread", "",
             f"Commit {meta['commit']}{'' if meta['clean_tree'] else ' (uncommitted changes)'}, load average "
             f"{meta['load_average'][0]} at the start; {args.frames} frames per video (MJPG, test images of the "
             "model's data set, each shown 3 frames), predicted as `predict VIDEO --out /dev/null` does.", "",
             "| model | frames per second (decode + detect + JSON Lines) | ms per frame to detect (median) |",
             "|---|---|---|"]
    lines += [f"| {r['model']} | {r['fps_end_to_end']:.1f} | {r['detect_ms_median']:.1f} |" for r in rows]
    atomic_write_text(os.path.join(args.out, "video.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
