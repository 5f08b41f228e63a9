"""The picture at the top of the README: a default model's detections on a real photo.

    python benchmarks/readme_picture.py [--data ../shared/data] [--out docs/images/detections.jpg]

Trains the default Localizer on the train split of cmu_mit_faces (frontal faces in about 90
greyscale photos and scans) and draws its detections with a score of at least ``--min-score``
(0.5) on a photo that ships inside the scikit-image wheel and was never seen in training:
``astronaut`` (Eileen Collins, NASA, public domain). The figure is written as a JPEG
(atomically); every detection down to 0.05 is printed, so the caption can say what the model
found and what the threshold left out.
"""

import argparse
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from classic_loc import Localizer, load_dataset  # noqa: E402
from classic_loc._fileio import atomic_write_bytes  # noqa: E402
from classic_loc.draw import draw_detections  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTOS = {"astronaut": lambda d: d.astronaut()}
DATA_SET = "cmu_mit_faces"
HEIGHT = 360


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("CLASSIC_LOC_SHARED_DATA",
                                                     os.path.join(HERE, "..", "..", "shared", "data")),
                    help="folder of the shared data sets (default: $CLASSIC_LOC_SHARED_DATA or ../shared/data)")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs", "images", "detections.jpg"),
                    help="the figure to write (default: docs/images/detections.jpg)")
    ap.add_argument("--n-jobs", type=int, default=-1, help="training processes (default: every core)")
    ap.add_argument("--min-score", type=float, default=0.5, help="draw detections with at least this score (0.5)")
    args = ap.parse_args(argv)
    import skimage.data

    train = load_dataset(os.path.join(args.data, DATA_SET), split="train")
    t0 = time.perf_counter()
    model = Localizer(n_jobs=args.n_jobs).fit(train)
    print(f"trained on {len(train)} {DATA_SET} images in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    panels = []
    for name, photo in PHOTOS.items():
        image = np.asarray(photo(skimage.data))
        d = model.detect(image)
        keep = d.scores >= args.min_score
        for box, label, score in zip(d.boxes, d.labels, d.scores):
            if score >= 0.05:
                print(f"{name}: {model.classes_[label]} {score:.2f} at {np.round(box).astype(int).tolist()}"
                      + ("" if score >= args.min_score else " (not drawn)"))
        drawn = draw_detections(image, d.boxes[keep], d.labels[keep], d.scores[keep], model.classes_, thickness=3)
        panels.append(cv2.resize(drawn, (round(drawn.shape[1] * HEIGHT / drawn.shape[0]), HEIGHT),
                                 interpolation=cv2.INTER_AREA))
    gap = np.full((HEIGHT, 8, 3), 255, np.uint8)
    figure = np.concatenate([part for panel in panels for part in (gap, panel)][1:], axis=1)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise SystemExit("could not encode the figure")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_bytes(args.out, data.tobytes())
    print(args.out)


if __name__ == "__main__":
    main()
