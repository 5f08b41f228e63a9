"""Make the models shipped in classic_loc/pretrained/ (face, person), and their cards.

    python benchmarks/pretrained.py [--data ../shared/data] [--into classic_loc/pretrained]
                                    [--out benchmarks/results] [--n-jobs 2]

Each model is the default Localizer (``random_state=0``) trained on the train split of one shared
data set, then scored on its test split with the shared evaluator:

- ``face``: cmu_mit_faces (the CMU+MIT frontal face test set of Rowley, Baluja and Kanade);
- ``person``: pennfudan (the Penn-Fudan pedestrian database of Wang, Shi, Song and Shen).

Writes ``<name>.npz`` and ``models.json`` (per model: the data set, its source and terms, the
settings, the seed, the commit and whether the tree was clean, the classic_loc version, the test
scores, the file's size) into ``--into`` (each file atomically), and ``pretrained.md`` /
``pretrained.json`` to ``--out``. Anyone can run it again: the same data and seed give the same
model on the same versions of the libraries.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the shared helpers, _bench.py
from _bench import git_state, load_average, machine  # noqa: E402

import classic_loc  # noqa: E402
from classic_loc import Localizer, load_dataset  # noqa: E402
from classic_loc._fileio import atomic_write_text  # noqa: E402
from classic_loc.pretrained import CARDS, NAMES  # noqa: E402

REPO = os.path.dirname(HERE)
METRICS = ("map50", "map", "map_small", "map_medium", "map_large", "mar_100", "accuracy", "loc_accuracy",
           "mean_iou")

#: name -> (shared data set, what it finds, source and terms as the data sets' README gives them)
SOURCES = {
    "face": ("cmu_mit_faces", "frontal faces",
             "the CMU+MIT frontal face test set (H. Rowley, S. Baluja, T. Kanade, CMU), 91 training images with "
             "358 faces, as used in J. Hays' sliding-window face detection project (GitHub "
             "lionelmessi6410/Face-Detection-with-a-Sliding-Window, commit bee82829); boxes computed by J. Hays "
             "from the facial landmarks of the original ground truth",
             "no license is stated for the images (the repository's MIT license covers the repository); the "
             "model holds learned weights, no image"),
    "person": ("pennfudan", "pedestrians (standing people)",
               "the Penn-Fudan Pedestrian Database (L. Wang, J. Shi, G. Song, I. Shen, 'Object Detection "
               "Combining Recognition and Segmentation', ACCV 2007), 119 training images with 311 people (GitHub "
               "gmguarino/PennFudan, commit 4d34ade8)",
               "no license is given; the database's readme says copyright stays with the authors and such works "
               "may not be reposted without their permission; the model holds learned weights, no image"),
}


def make(name, data, into, n_jobs):
    """Train, score and save the model ``name``; returns its card."""
    set_name, what, source, terms = SOURCES[name]
    train = load_dataset(os.path.join(data, set_name), split="train")
    test = load_dataset(os.path.join(data, set_name), split="test")
    model = Localizer(random_state=0, n_jobs=n_jobs)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    scores = model.score(test)
    path = os.path.join(into, NAMES[name])
    model.save(path)
    return {
        "name": name, "finds": what, "classes": list(model.classes_), "data_set": set_name,
        "source": source, "terms": terms,
        "train_images": len(train), "test_images": len(test),
        "settings": "the defaults of classic_loc.Localizer, random_state=0",
        "scores_on_test_split": {k: scores[k] for k in METRICS},
        "fit_seconds": round(fit_s, 1), "file_kib": round(os.path.getsize(path) / 1024, 1),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("CLASSIC_LOC_SHARED_DATA",
                                                     os.path.join(REPO, "..", "shared", "data")),
                    help="folder of the shared data sets (default: ../shared/data)")
    ap.add_argument("--into", default=os.path.join(REPO, "classic_loc", "pretrained"),
                    help="where the model files and models.json go (default: classic_loc/pretrained)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="folder for pretrained.md and .json")
    ap.add_argument("--n-jobs", type=int, default=2, help="processes for each fit (default 2)")
    args = ap.parse_args(argv)
    tree, start_load = git_state(), load_average()
    cards = {}
    for name in NAMES:
        print(f"training {name} on {SOURCES[name][0]} ...", file=sys.stderr, flush=True)
        cards[name] = make(name, args.data, args.into, args.n_jobs)
    meta = {"commit": tree and tree["head"], "clean_tree": bool(tree) and not tree["changed_files"],
            "changed_files": tree and tree["changed_files"], "classic_loc": classic_loc.__version__,
            "machine": machine(), "load_average": [start_load, load_average()],
            "command": "python benchmarks/pretrained.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    for card in cards.values():
        card["made_by"] = meta
    atomic_write_text(os.path.join(args.into, CARDS), json.dumps(cards, indent=2) + "\n")
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "pretrained.json"), json.dumps(cards, indent=2) + "\n")
    lines = ["# The shipped models", "",
             f"Made by `{meta['command']}` at commit {meta['commit']}"
             f"{'' if meta['clean_tree'] else ' (uncommitted changes: ' + ', '.join(meta['changed_files']) + ')'}, "
             f"load average {meta['load_average'][0]} at the start; default settings, random_state=0; scores on each "
             "data set's test split by the shared evaluator.", "",
             "| model | finds | trained on | AP50 | mAP | AR@100 | loc_accuracy | file KiB | fit s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for card in cards.values():
        sc = card["scores_on_test_split"]
        lines.append(f"| {card['name']} | {card['finds']} | {card['data_set']} ({card['train_images']} images) | "
                     f"{sc['map50']:.3f} | {sc['map']:.3f} | {sc['mar_100']:.3f} | {sc['loc_accuracy']:.3f} | "
                     f"{card['file_kib']} | {card['fit_seconds']} |")
    lines += ["", "Data and terms:", ""] + [f"- {c['name']}: {c['source']}. Terms: {c['terms']}." for c in cards.values()]
    atomic_write_text(os.path.join(args.out, "pretrained.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
