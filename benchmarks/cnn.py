"""The CNN localizer of the classic course notes, in PyTorch on CPU, scored by classic_loc's evaluator.

It is the CNN side of the comparison with the classical HOG + linear SVM
baseline, on equal terms: the same train/test split of the same data set, and
its predictions written as a COCO results JSON that the shared evaluator
(:func:`classic_loc.evaluation.evaluate`, ``python -m classic_loc evaluate``)
scores with the same code and definitions as the classical model's.

The model ("classification + localization" network)
--------------------------------------------------
- **Input**: the image letterboxed to a square of ``input_size`` pixels: resized
  (``cv2.INTER_AREA``) with its aspect ratio kept so that its longer side fills
  the square, centred, the rest padded with mid grey; grayscale images are
  repeated into 3 channels. Pixels are normalised as ``(u8 - 128) / 64``, so the
  padding is 0.
- **Backbone**: a stride-2 convolutional stem, then conv-BN-ReLU-max-pool
  blocks (3x3 convolutions), then global average pooling to one feature vector.
  The last blocks also see two coordinate channels (x and y in [-1, 1],
  "CoordConv", Liu et al. 2018): global pooling discards where a feature fired,
  and these channels let the pooled vector keep the object's position, which
  the box head needs.
- **Heads** on the feature vector (after one shared fully connected ReLU layer):
  K class scores (softmax, cross-entropy over the data set's K classes), 4 box
  numbers (``x1, y1, x2, y2`` of the letterboxed square divided by its size;
  smooth-L1) and one object-presence logit (binary cross-entropy).
- **Loss**: ``presence BCE (every image) + class CE (images with an object)
  + BOX_WEIGHT * smooth-L1 box loss (images with an object)``.
- **Target**: an image's *main object*, the evaluator's definition: its
  ground-truth box of largest area (the first on ties), VOC ``difficult`` boxes
  included. An image without objects has presence target 0 and no class or box
  loss. On the multi-object sets (pennfudan, cmu_mit_faces) the network can
  find only one object per image, which caps recall and so AP: that is the
  model of the notes, not a detector.
- **Training**: from scratch on the train split only, AdamW with a linear
  warm-up and a cosine decay per step, batches of 32; light augmentation on the
  cached tensors (horizontal flip with the box flipped, scale jitter 0.9-1.1
  and translation up to 8% of the square, boxes clipped to it). Seeded: torch,
  numpy, and the data order and augmentation from generators of ``--seed``.
  Images are decoded once and cached as letterboxed uint8 tensors.
- **Prediction**: one box per image, the box head's output mapped back to the
  original image pixels (clipped to the image), the arg-max class, and
  ``score = P(object) * P(class)``. Every test image gets its one detection;
  the score carries the presence probability, so images judged empty rank last
  in AP. (The evaluator's presence metrics therefore count every image as
  "object present".)

Two sizes: ``tiny`` (4 convolutions of 16-128 channels, 128 px input, 0.12 M
parameters, 0.5 MB of weights, for low-power machines) and ``small`` (6
convolutions of 24-192 channels, 160 px input, 0.47 M parameters, 1.9 MB).
Training is deterministic for a given seed *and* thread count (``--threads``
changes the order of floating-point sums).

Run
---
From the repository root, with PyTorch installed (``pip install torch``; no
torchvision needed)::

    python benchmarks/cnn.py --set caltech101_subset --size tiny --data ../shared/data \\
        --out benchmarks/out/cnn --seed 0 [--epochs N] [--quiet]

writes to ``--out`` (atomically):

- ``<set>_cnn-<size>_detections.json``: COCO results on the test split
  (``image_id`` = the image's file stem, ``category_id`` = the class name, as
  the evaluator reads them; ``bbox`` = ``[x, y, w, h]`` in original image
  pixels), to score with ``python -m classic_loc evaluate --gt ../shared/data/<set>
  --pred <that file>``;
- ``<set>_cnn-<size>.pt``: the weights (a ``state_dict`` only; load with
  ``torch.load(path, weights_only=True)``);
- ``<set>_cnn-<size>_figures.json``: ``fit_seconds`` (decoding and caching the
  train images included), ``predict_ms_per_image`` (median over the test
  images, one thread, batch size 1, letterboxing + network + decoding the box,
  image decoding excluded, after a warm-up), ``peak_rss_mb`` (VmHWM of a fresh
  process that only loads the weights and predicts the test images),
  ``model_bytes``, ``n_parameters``, ``epochs``, ``input_size``, the torch
  version, and the evaluator's metrics (``accuracy``, ``loc_accuracy``,
  ``mean_iou``, ``map50``, ``map``; all of them under ``evaluation``).

From Python: :func:`run` returns the same figures. ``--predict-only`` loads
saved weights, predicts the test split and prints its timing and peak memory as
one JSON line (this is the fresh process that measures ``peak_rss_mb``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # a shared 2-core machine: torch's threads are set explicitly below
# OpenMP threads that spin while waiting make 2-thread training 3-8x slower whenever another
# process holds a core (measured on the shared 2-core machine); passive waiting avoids it.
# Only effective when torch is imported after this module.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from classic_loc import evaluate, load_dataset  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the shared helpers, _bench.py
from _bench import peak_rss_mb  # noqa: E402

__all__ = ["SIZES", "LocalizerNet", "decode_boxes", "default_epochs", "letterbox", "main", "main_object",
           "predict_image", "run"]

#: Architecture and input size of each model size. ``blocks``: (out channels, max-pool after it)
#: for each 3x3 conv-BN-ReLU after the stride-2 stem; ``coord_from``: index of the first block
#: whose input gets the two coordinate channels; ``hidden``: width of the shared FC layer.
SIZES = {
    "tiny": {"input_size": 128, "stem": 16, "blocks": ((32, True), (64, True), (128, True)),
             "coord_from": 1, "hidden": 128},
    "small": {"input_size": 160, "stem": 24, "blocks": ((48, True), (64, True), (96, True), (128, True), (192, False)),
              "coord_from": 2, "hidden": 192},
}
#: Epochs per (set, size), chosen so that both sizes on all three shared sets train in about
#: 12 minutes on a 2-core machine; other sets get :func:`default_epochs`.
EPOCHS = {
    ("caltech101_subset", "tiny"): 40, ("caltech101_subset", "small"): 30,
    ("pennfudan", "tiny"): 200, ("pennfudan", "small"): 150,
    ("cmu_mit_faces", "tiny"): 200, ("cmu_mit_faces", "small"): 150,
}
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 5e-4
BOX_WEIGHT = 5.0
SMOOTH_L1_BETA = 0.05  # in units of the square's side: L1 beyond 5% of the side
FLIP_P, SCALE_JITTER, SHIFT_JITTER = 0.5, 0.1, 0.08
PAD_VALUE = 128  # grey padding; 0 after normalisation
WARMUP_RUNS = 5


# ------------------------------------------------------------------------------------- images
def letterbox(image, size):
    """Resize an image into a ``size`` x ``size`` square, aspect ratio kept, centred, grey padding.

    Parameters
    ----------
    image : ndarray of uint8
        ``(rows, cols)`` grayscale or ``(rows, cols, 3)`` RGB, as ``classic_loc`` decodes it.
    size : int
        Side of the square.

    Returns
    -------
    square : ndarray of uint8, shape (3, size, size)
        Channels first; grayscale is repeated into 3 channels.
    geometry : ndarray of float64, shape (4,)
        ``sx, sy, ox, oy``: a point ``(x, y)`` of the image lands at ``(x * sx + ox, y * sy + oy)``.
    """
    rows, cols = image.shape[:2]
    scale = size / max(rows, cols)
    new_c, new_r = max(1, min(size, round(cols * scale))), max(1, min(size, round(rows * scale)))
    resized = cv2.resize(image, (new_c, new_r), interpolation=cv2.INTER_AREA)
    if resized.ndim == 2:
        resized = np.repeat(resized[:, :, None], 3, axis=2)
    ox, oy = (size - new_c) // 2, (size - new_r) // 2
    square = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    square[oy:oy + new_r, ox:ox + new_c] = resized
    geometry = np.array([new_c / cols, new_r / rows, ox, oy], dtype=np.float64)
    return np.ascontiguousarray(square.transpose(2, 0, 1)), geometry


def normalise(batch_u8):
    """uint8 tensor (B, 3, S, S) to float32 network input: ``(u8 - 128) / 64``."""
    return (batch_u8.float() - PAD_VALUE) / 64.0


def main_object(record):
    """The evaluator's main object of an image: its largest box (the first on ties).

    Returns
    -------
    (label, box) : (int, ndarray of shape (4,)) or None when the image has no object.
    """
    if record.n_objects == 0:
        return None
    boxes = record.boxes
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    k = int(np.argmax(area))
    return int(record.labels[k]), boxes[k].astype(np.float64)


def cache_split(dataset, size, verbose=False):
    """Decode every image once, letterbox it and keep the main-object targets.

    Returns
    -------
    dict
        ``images`` uint8 (N, 3, S, S); ``boxes`` float32 (N, 4), the main object's
        ``x1, y1, x2, y2`` in the square divided by ``size`` (0 without object);
        ``labels`` int64 (N,) (0 without object); ``present`` float32 (N,).
    """
    n = len(dataset)
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    boxes = torch.zeros((n, 4), dtype=torch.float32)
    labels = torch.zeros(n, dtype=torch.int64)
    present = torch.zeros(n, dtype=torch.float32)
    t0 = time.perf_counter()
    for i, rec in enumerate(dataset):
        square, (sx, sy, ox, oy) = letterbox(dataset.image(i), size)
        images[i] = torch.from_numpy(square)
        target = main_object(rec)
        if target is not None:
            label, (x1, y1, x2, y2) = target
            boxes[i] = torch.tensor([x1 * sx + ox, y1 * sy + oy, x2 * sx + ox, y2 * sy + oy]) / size
            labels[i], present[i] = label, 1.0
    _log(verbose, f"cached {n} images at {size}x{size} in {time.perf_counter() - t0:.1f} s")
    return {"images": images, "boxes": boxes, "labels": labels, "present": present}


# ------------------------------------------------------------------------------------- model
def conv_bn_relu(c_in, c_out, stride=1):
    """3x3 convolution (no bias), batch normalisation, ReLU."""
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


def coordinate_channels(x):
    """Two channels holding each pixel's x and y in [-1, 1] (pixel centres), shaped like ``x``'s batch."""
    b, _, h, w = x.shape
    ys = (torch.arange(h, dtype=x.dtype) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, dtype=x.dtype) + 0.5) * (2.0 / w) - 1.0
    grid = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w)])
    return grid.expand(b, 2, h, w)


class LocalizerNet(nn.Module):
    """Backbone, global average pooling, and the class, box and presence heads.

    Parameters
    ----------
    n_classes : int
    stem : int
        Channels of the stride-2 stem convolution (followed by a 2x2 max-pool).
    blocks : sequence of (int, bool)
        Output channels of each further conv-BN-ReLU and whether a 2x2 max-pool follows it.
    coord_from : int
        Index of the first block whose input also gets the two coordinate channels.
    hidden : int
        Width of the shared fully connected ReLU layer before the heads.

    Notes
    -----
    ``forward`` returns ``(class_logits (B, K), boxes (B, 4), presence_logits (B,))``;
    the boxes are ``x1, y1, x2, y2`` of the input square divided by its side.
    """

    def __init__(self, n_classes, stem, blocks, coord_from, hidden, **_):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn_relu(3, stem, stride=2), nn.MaxPool2d(2))
        self.coord_from = coord_from
        self.blocks = nn.ModuleList()
        c_in = stem
        for k, (c_out, pool) in enumerate(blocks):
            layers = conv_bn_relu(c_in + (2 if k >= coord_from else 0), c_out)
            self.blocks.append(nn.Sequential(*layers, *([nn.MaxPool2d(2)] if pool else [])))
            c_in = c_out
        self.fc = nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(inplace=True))
        self.class_head = nn.Linear(hidden, n_classes)
        self.box_head = nn.Linear(hidden, 4)
        self.presence_head = nn.Linear(hidden, 1)
        with torch.no_grad():  # start from the centre box covering half the square
            self.box_head.weight.mul_(0.1)
            self.box_head.bias.copy_(torch.tensor([0.25, 0.25, 0.75, 0.75]))

    def features(self, x):
        """The pooled feature vector (B, C) of a normalised input batch."""
        x = self.stem(x)
        for k, block in enumerate(self.blocks):
            if k >= self.coord_from:
                x = torch.cat([x, coordinate_channels(x)], dim=1)
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, x):
        h = self.fc(self.features(x))
        return self.class_head(h), self.box_head(h), self.presence_head(h)[:, 0]


def build_model(size, n_classes):
    """A fresh :class:`LocalizerNet` of ``size`` ("tiny" or "small") for ``n_classes`` classes."""
    return LocalizerNet(n_classes, **SIZES[size])


def n_parameters(model):
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


# ------------------------------------------------------------------------------------- training
def augment(images, boxes, present, gen):
    """Random horizontal flip, scale and translation of a normalised batch, boxes moved alike.

    Parameters
    ----------
    images : Tensor (B, 3, S, S), float, normalised (padding 0)
    boxes : Tensor (B, 4), ``x1, y1, x2, y2`` / S
    present : Tensor (B,)
    gen : torch.Generator

    Returns
    -------
    images, boxes, present
        Boxes are clipped to the square; an object pushed out of it entirely becomes absent.
    """
    b = images.shape[0]
    flip = torch.where(torch.rand(b, generator=gen) < FLIP_P, -1.0, 1.0)
    scale = 1.0 + (torch.rand(b, generator=gen) * 2 - 1) * SCALE_JITTER
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * SHIFT_JITTER * 2  # in [-1, 1] units
    # output point u = (flip * scale * v_x + t_x, scale * v_y + t_y); affine_grid wants v from u
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = 1.0 / (flip * scale)
    theta[:, 0, 2] = -shift[:, 0] / (flip * scale)
    theta[:, 1, 1] = 1.0 / scale
    theta[:, 1, 2] = -shift[:, 1] / scale
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    v = boxes * 2 - 1
    x = flip[:, None] * scale[:, None] * v[:, [0, 2]] + shift[:, :1]
    y = scale[:, None] * v[:, [1, 3]] + shift[:, 1:]
    x = torch.sort(x, dim=1).values  # a flip swaps x1 and x2
    new = (torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1).clamp(-1, 1) + 1) / 2
    visible = (new[:, 2] > new[:, 0]) & (new[:, 3] > new[:, 1])
    return out, torch.where(present[:, None] > 0, new, boxes), present * visible.float()


def multitask_loss(outputs, boxes, labels, present):
    """Presence BCE over all images; class CE and smooth-L1 box loss over images with an object.

    Returns
    -------
    total : Tensor (scalar)
    parts : dict of float
        ``presence``, ``class``, ``box`` (unweighted batch means).
    """
    class_logits, box_pred, presence_logits = outputs
    loss_pres = F.binary_cross_entropy_with_logits(presence_logits, present)
    obj = present > 0
    if obj.any():
        loss_cls = F.cross_entropy(class_logits[obj], labels[obj])
        loss_box = F.smooth_l1_loss(box_pred[obj], boxes[obj], beta=SMOOTH_L1_BETA, reduction="none").sum(1).mean()
    else:
        loss_cls = loss_box = class_logits.sum() * 0.0
    total = loss_pres + loss_cls + BOX_WEIGHT * loss_box
    return total, {"presence": loss_pres.item(), "class": loss_cls.item(), "box": loss_box.item()}


def lr_at(step, total_steps, base_lr):
    """Linear warm-up over the first 5% of steps (at least one), then cosine decay to 0."""
    warm = max(1, int(0.05 * total_steps))
    if step < warm:
        return base_lr * (step + 1) / warm
    progress = (step - warm) / max(1, total_steps - warm)
    return base_lr * 0.5 * (1.0 + np.cos(np.pi * progress))


def default_epochs(set_name, size, n_train):
    """Epochs of :data:`EPOCHS`, else about 50,000 image presentations (10 to 200 epochs)."""
    if (set_name, size) in EPOCHS:
        return EPOCHS[(set_name, size)]
    return int(np.clip(round(50000 / max(1, n_train)), 10, 200))


def train(model, cache, epochs, seed, verbose=True, batch_size=BATCH_SIZE, lr=LEARNING_RATE):
    """Train ``model`` on a cached split: AdamW, warm-up and cosine schedule, augmentation.

    Returns
    -------
    list of dict
        One entry per epoch: ``epoch``, ``loss`` and its parts (means over the epoch), ``lr``, ``seconds``.
    """
    n = len(cache["images"])
    order_rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = -(-n // batch_size)
    total, step, log = epochs * steps_per_epoch, 0, []
    model.train()
    for epoch in range(epochs):
        t0, sums, seen = time.perf_counter(), {"loss": 0.0, "presence": 0.0, "class": 0.0, "box": 0.0}, 0
        order = torch.from_numpy(order_rng.permutation(n))
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            images, boxes, present = augment(normalise(cache["images"][idx]), cache["boxes"][idx],
                                             cache["present"][idx], gen)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, lr)
            loss, parts = multitask_loss(model(images), boxes, cache["labels"][idx], present)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen += len(idx)
            sums["loss"] += loss.item() * len(idx)
            for key, value in parts.items():
                sums[key] += value * len(idx)
        entry = {"epoch": epoch + 1, **{k: round(v / seen, 5) for k, v in sums.items()},
                 "lr": float(opt.param_groups[0]["lr"]), "seconds": round(time.perf_counter() - t0, 3)}
        log.append(entry)
        _log(verbose, f"epoch {epoch + 1}/{epochs}  loss {entry['loss']:.4f}  (presence {entry['presence']:.4f}  "
                      f"class {entry['class']:.4f}  box {entry['box']:.4f})  lr {entry['lr']:.2e}  "
                      f"{entry['seconds']:.1f} s")
    model.eval()
    return log


# ------------------------------------------------------------------------------------- prediction
def decode_boxes(box_norm, geometry, width, height, size):
    """Network boxes (``x1, y1, x2, y2`` / S in the square) to original image pixels.

    Coordinates are ordered (``x1 <= x2``, ``y1 <= y2``), clipped to the image and
    given a width and height of at least 1 pixel.

    Parameters
    ----------
    box_norm : array-like (N, 4)
    geometry : array-like (N, 4) or (4,)
        ``sx, sy, ox, oy`` of :func:`letterbox`.
    width, height : array-like (N,) or int

    Returns
    -------
    ndarray of float64, shape (N, 4)
    """
    b = np.asarray(box_norm, dtype=np.float64).reshape(-1, 4) * size
    g = np.broadcast_to(np.asarray(geometry, dtype=np.float64), (len(b), 4))
    w = np.broadcast_to(np.asarray(width, dtype=np.float64), (len(b),))
    h = np.broadcast_to(np.asarray(height, dtype=np.float64), (len(b),))
    xs = np.sort((b[:, [0, 2]] - g[:, 2:3]) / g[:, 0:1], axis=1)
    ys = np.sort((b[:, [1, 3]] - g[:, 3:4]) / g[:, 1:2], axis=1)
    x1, x2 = np.clip(xs[:, 0], 0, w - 1), np.clip(xs[:, 1], 0, w)
    y1, y2 = np.clip(ys[:, 0], 0, h - 1), np.clip(ys[:, 1], 0, h)
    x2, y2 = np.maximum(x2, np.minimum(x1 + 1, w)), np.maximum(y2, np.minimum(y1 + 1, h))
    return np.stack([x1, y1, x2, y2], axis=1)


def predict_image(model, image, size):
    """The one prediction of a decoded image: box in its pixels, class index, score, and head outputs.

    Returns
    -------
    dict
        ``box`` (4,) xyxy in original pixels, ``label`` int, ``score`` = P(object) * P(class),
        ``presence`` = P(object), ``class_probs`` (K,).
    """
    square, geometry = letterbox(image, size)
    with torch.inference_mode():
        class_logits, box, presence_logit = model(normalise(torch.from_numpy(square)[None]))
    probs = torch.softmax(class_logits[0], dim=0).numpy()
    presence = float(torch.sigmoid(presence_logit[0]))
    label = int(np.argmax(probs))
    rows, cols = image.shape[:2]
    return {"box": decode_boxes(box.numpy(), geometry, cols, rows, size)[0], "label": label,
            "score": presence * float(probs[label]), "presence": presence, "class_probs": probs}


def coco_result(image_id, box, class_name, score):
    """One COCO results entry (``bbox`` = ``[x, y, w, h]``, plain floats)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return {"image_id": image_id, "category_id": class_name, "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": float(score)}


def predict_split(model, dataset, size, verbose=False):
    """Predict every image of ``dataset`` one at a time on one thread; time each (decoding excluded).

    Returns
    -------
    results : list of dict
        COCO results, one per image, in dataset order.
    times : list of float
        Seconds per image (letterbox, network, box decoding), after a warm-up.
    """
    before, before_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        model.eval()
        results, times = [], []
        for i, rec in enumerate(dataset):
            image = dataset.image(i)
            if i == 0:
                for _ in range(WARMUP_RUNS):
                    predict_image(model, image, size)
            t0 = time.perf_counter()
            p = predict_image(model, image, size)
            times.append(time.perf_counter() - t0)
            results.append(coco_result(rec.image_id, p["box"], dataset.classes[p["label"]], p["score"]))
        _log(verbose, f"predicted {len(dataset)} test images, median {statistics.median(times) * 1000:.2f} ms")
        return results, times
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(before_cv)


# ------------------------------------------------------------------------------------- files
def _atomic_write(path, write):
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, obj):
    """Write ``obj`` as JSON, atomically."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1)
            fh.write("\n")
    _atomic_write(path, write)


def save_weights(model, path):
    """Save the model's ``state_dict`` (nothing else), atomically; return the file size in bytes."""
    _atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))
    return os.path.getsize(path)


def load_weights(path, size, n_classes):
    """A :class:`LocalizerNet` of ``size`` with the weights at ``path`` (``weights_only=True``), in eval mode."""
    model = build_model(size, n_classes)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def output_paths(out_dir, set_name, size):
    """Paths of the detections, weights and figures files of one run."""
    stem = os.path.join(out_dir, f"{os.path.basename(os.path.normpath(set_name))}_cnn-{size}")
    return {"detections": stem + "_detections.json", "weights": stem + ".pt", "figures": stem + "_figures.json"}



def measure_predict_process(set_name, size, data_dir, out_dir):
    """Run ``--predict-only`` in a fresh process and return its JSON line (peak RSS, timing)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--predict-only", "--set", set_name, "--size", size,
           "--data", os.fspath(data_dir), "--out", os.fspath(out_dir), "--quiet"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the prediction process failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def predict_only(set_name, size, data_dir, out_dir):
    """Load saved weights, predict the test split one image at a time; timing and peak memory.

    Returns
    -------
    dict
        ``peak_rss_mb`` (VmHWM at the end), ``predict_ms_per_image`` (median), ``n_images``.
    """
    torch.set_num_threads(1)
    test = load_dataset(os.path.join(data_dir, set_name), split="test")
    model = load_weights(output_paths(out_dir, set_name, size)["weights"], size, len(test.classes))
    _, times = predict_split(model, test, SIZES[size]["input_size"])
    return {"peak_rss_mb": round(peak_rss_mb(), 1), "predict_ms_per_image": round(statistics.median(times) * 1000, 3),
            "n_images": len(test)}


# ------------------------------------------------------------------------------------- the run
def _log(verbose, msg):
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def seed_everything(seed):
    """Seed torch and numpy's global generators (the data order has its own generators)."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def run(set_name, size, data_dir, out_dir, seed=0, epochs=None, verbose=True, threads=2, measure_rss=True):
    """Train on a set's train split, predict its test split, score with classic_loc's evaluator.

    Parameters
    ----------
    set_name : str
        Folder of the data set under ``data_dir`` (any format :func:`classic_loc.load_dataset` reads
        with ``train`` and ``test`` splits), e.g. ``"caltech101_subset"``.
    size : {"tiny", "small"}
    data_dir : str or path-like
        Folder holding the data sets, e.g. ``"../shared/data"``.
    out_dir : str or path-like
        Where the detections, weights and figures files go (created if needed).
    seed : int
    epochs : int, optional
        Default: :func:`default_epochs`.
    verbose : bool
        Progress on stderr (one line per epoch).
    threads : int
        Torch threads for training (prediction is timed on one thread).
    measure_rss : bool
        Measure ``peak_rss_mb`` in a fresh process (else it is None).

    Returns
    -------
    dict
        The figures written to ``<set>_cnn-<size>_figures.json``.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; use one of {sorted(SIZES)}")
    set_dir, paths = os.path.join(data_dir, set_name), output_paths(out_dir, set_name, size)
    input_size = SIZES[size]["input_size"]
    train_ds, test_ds = load_dataset(set_dir, split="train"), load_dataset(set_dir, split="test")
    epochs = default_epochs(set_name, size, len(train_ds)) if epochs is None else int(epochs)
    _log(verbose, f"{set_name}: {len(train_ds)} train / {len(test_ds)} test images, classes {list(train_ds.classes)}; "
                  f"cnn-{size}, {input_size} px, {epochs} epochs, {threads} threads, seed {seed}")
    load_before = os.getloadavg()
    model, fit = fit_model(train_ds, size, epochs, seed, threads, verbose)
    load_after = os.getloadavg()
    model_bytes = save_weights(model, paths["weights"])
    results, times = predict_split(model, test_ds, input_size, verbose)
    write_json(paths["detections"], results)
    metrics = evaluate(test_ds, paths["detections"])  # the evaluator reads the file as the CLI does
    fresh = measure_predict_process(set_name, size, data_dir, out_dir) if measure_rss else None
    figures = {
        "set": set_name, "model": f"cnn-{size}", "size": size, "seed": seed,
        **{k: metrics[k] for k in ("accuracy", "loc_accuracy", "mean_iou", "map50", "map")},
        "fit_seconds": round(fit["fit_seconds"], 2), "cache_seconds": round(fit["cache_seconds"], 2),
        "predict_ms_per_image": round(statistics.median(times) * 1000, 3),
        "peak_rss_mb": fresh["peak_rss_mb"] if fresh else None,
        "predict_ms_per_image_fresh_process": fresh["predict_ms_per_image"] if fresh else None,
        "model_bytes": model_bytes, "n_parameters": n_parameters(model), "epochs": epochs,
        "input_size": input_size, "resize": "letterbox (aspect kept, centred, grey padding)",
        "batch_size": BATCH_SIZE, "train_threads": threads, "torch_version": torch.__version__,
        "load_average_1min": {"before_fit": round(load_before[0], 2), "after_fit": round(load_after[0], 2)},
        "n_train": len(train_ds), "n_test": len(test_ds), "classes": list(train_ds.classes),
        "detections_per_image": 1, "files": {k: os.path.abspath(v) for k, v in paths.items()},
        "training_log": fit["log"], "evaluation": metrics,
    }
    write_json(paths["figures"], figures)
    _log(verbose, f"{set_name} cnn-{size}: accuracy {metrics['accuracy']:.3f}  loc_accuracy "
                  f"{metrics['loc_accuracy']:.3f}  mean_iou {metrics['mean_iou']:.3f}  map50 {metrics['map50']:.3f}  "
                  f"map {metrics['map']:.3f}  fit {fit['fit_seconds']:.1f} s  "
                  f"predict {figures['predict_ms_per_image']:.2f} ms")
    return figures


def fit_model(train_ds, size, epochs, seed, threads=2, verbose=True):
    """Seed, decode and cache the train split, build and train a model of ``size``.

    Returns
    -------
    model : LocalizerNet
        In eval mode.
    fit : dict
        ``fit_seconds`` (caching included), ``cache_seconds``, ``log`` (per epoch).
    """
    before, before_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(threads)
    cv2.setNumThreads(1)
    try:
        seed_everything(seed)
        t0 = time.perf_counter()
        cache = cache_split(train_ds, SIZES[size]["input_size"], verbose)
        cache_seconds = time.perf_counter() - t0
        model = build_model(size, len(train_ds.classes))
        log = train(model, cache, epochs, seed, verbose)
        return model, {"fit_seconds": time.perf_counter() - t0, "cache_seconds": cache_seconds, "log": log}
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(before_cv)


def build_parser():
    """The command line parser."""
    p = argparse.ArgumentParser(
        prog="python benchmarks/cnn.py",
        description="Train the CNN localizer of the course notes (conv-BN-ReLU-pool backbone, global pooling, "
                    "class / box / presence heads; one box per image) on a data set's train split, predict its "
                    "test split and score it with classic_loc's shared evaluator. Writes "
                    "<set>_cnn-<size>_detections.json (COCO results), <set>_cnn-<size>.pt (state_dict) and "
                    "<set>_cnn-<size>_figures.json to --out.")
    p.add_argument("--set", required=True, dest="set_name",
                   help="data set folder name under --data, e.g. caltech101_subset, pennfudan, cmu_mit_faces")
    p.add_argument("--size", choices=sorted(SIZES), default="tiny",
                   help="tiny: 4 convolutions, 128 px, 0.12 M parameters, 0.5 MB (low-power machines); "
                        "small: 6 convolutions, 160 px, 0.47 M parameters, 1.9 MB (default: tiny)")
    p.add_argument("--data", default="../shared/data", help="folder holding the data sets (default: ../shared/data)")
    p.add_argument("--out", default="benchmarks/out/cnn", help="output folder (default: benchmarks/out/cnn)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order and augmentation (default: 0)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: per set and size, sized for ~12 min for all six runs on 2 cores)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for training (default: 2); "
                                                            "prediction is always timed on one thread")
    p.add_argument("--no-rss", action="store_true",
                   help="skip measuring peak memory in a fresh prediction process (peak_rss_mb is then null)")
    p.add_argument("--predict-only", action="store_true",
                   help="only load <out>/<set>_cnn-<size>.pt, predict the test split and print peak RSS and "
                        "timing as one JSON line (the fresh process that measures peak_rss_mb)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def main(argv=None):
    """Command line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.predict_only:
        print(json.dumps(predict_only(args.set_name, args.size, args.data, args.out)))
        return 0
    figures = run(args.set_name, args.size, args.data, args.out, seed=args.seed, epochs=args.epochs,
                  verbose=not args.quiet, threads=args.threads, measure_rss=not args.no_rss)
    if not args.quiet:
        print(json.dumps({k: figures[k] for k in ("set", "model", "accuracy", "loc_accuracy", "mean_iou", "map50",
                                                  "map", "fit_seconds", "predict_ms_per_image", "peak_rss_mb",
                                                  "model_bytes")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
