"""Generate the embedded demo data set: three shape classes on cluttered photo backgrounds.

The demo data set needs no download: its backgrounds are random crops of the
sample photos that ship inside the scikit-image wheel (``skimage.data``), and
the objects are drawn with OpenCV. The output is a Pascal VOC folder::

    OUT_DIR/JPEGImages/demo_0000.jpg ...
    OUT_DIR/Annotations/demo_0000.xml ...
    OUT_DIR/ImageSets/Main/train.txt, test.txt
    OUT_DIR/classes.txt

Classes are ``ring``, ``triangle`` and ``cross``. Each image holds 0 to 3
objects (about 15% of the images hold none) of 28 to 110 pixels, with slight
aspect-ratio changes and rotations, textured fills of random colour and
contrast, some partial occlusion, and non-class clutter that resembles parts of
the classes (arcs, disks, square frames, bars, L and T shapes, trapezoids,
chevrons). Boxes are the tight boxes of the visible part of each drawn object.

The output depends only on ``n_images`` and ``seed`` (numpy ``Generator``,
fixed JPEG quality), so two runs on the same machine write identical bytes.

Run as a script::

    python data/generate.py OUT_DIR [--n-images 360] [--seed 0]
    python -m classic_loc._demo.generate OUT_DIR
"""

import argparse
import functools
import os
import sys
import time

import cv2
import numpy as np

try:
    from classic_loc.datasets._dataset import Dataset, ImageRecord
    from classic_loc.datasets.voc import write_voc
except ImportError:  # run as ``python data/generate.py`` from a checkout without an install
    if __name__ != "__main__":
        raise
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from classic_loc.datasets._dataset import Dataset, ImageRecord
    from classic_loc.datasets.voc import write_voc

__all__ = ["generate", "CLASSES", "DEMO_VERSION", "DEMO_IMAGES", "DEMO_SEED"]

#: Bump when the generator's output changes: the cache folder is ``demo-v<DEMO_VERSION>``.
DEMO_VERSION = 2
#: Size and seed of the cached demo data set (see :func:`classic_loc._demo.demo_path`).
DEMO_IMAGES = 360
DEMO_SEED = 0

CLASSES = ("ring", "triangle", "cross")

TEST_FRACTION = 0.3
EMPTY_FRACTION = 0.15
JPEG_QUALITY = 90
MIN_SIZE, MAX_SIZE = 44, 120  # shape size before rotation: boxes of about 42 to 135 pixels
# sample photos of the scikit-image wheel (no download needed)
BACKGROUNDS = ("astronaut", "camera", "coffee", "chelsea", "coins", "moon", "page", "text", "rocket",
               "brick", "grass", "gravel", "clock", "hubble_deep_field", "immunohistochemistry", "cell",
               "colorwheel", "cat")

_SS = 4  # supersampling factor of the shape rasteriser (anti-aliased masks)


# ---------------------------------------------------------------- backgrounds

@functools.lru_cache(maxsize=1)
def _photos():
    """The sample photos as RGB uint8 arrays, loaded once per process."""
    import skimage.data

    out = []
    for name in BACKGROUNDS:
        img = np.asarray(getattr(skimage.data, name)())
        if img.dtype != np.uint8:
            img = (255 * (img.astype(np.float64) / max(float(img.max()), 1.0))).astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        out.append(np.ascontiguousarray(img[:, :, :3]))
    return tuple(out)


def _photo_crop(rng, rows, cols, scale_range=(0.5, 1.6)):
    """A random crop of a random photo, resized to (rows, cols), flipped and colour-jittered; float32."""
    photos = _photos()
    photo = photos[rng.integers(len(photos))]
    ph, pw = photo.shape[:2]
    scale = rng.uniform(*scale_range)
    scale = min(scale, ph / rows, pw / cols)
    ch, cw = max(4, int(rows * scale)), max(4, int(cols * scale))
    y0 = rng.integers(0, ph - ch + 1)
    x0 = rng.integers(0, pw - cw + 1)
    crop = photo[y0:y0 + ch, x0:x0 + cw]
    interp = cv2.INTER_AREA if ch > rows else cv2.INTER_LINEAR
    img = cv2.resize(crop, (cols, rows), interpolation=interp).astype(np.float32)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.2:
        img = img[::-1]
    # colour jitter: per-channel gain, contrast around the mean, brightness shift
    gain = rng.uniform(0.75, 1.25, size=3).astype(np.float32)
    mean = img.mean()
    img = (img - mean) * np.float32(rng.uniform(0.55, 1.2)) + mean + np.float32(rng.uniform(-35, 35))
    img = img * gain
    return np.ascontiguousarray(img)


def _smooth_noise(rng, rows, cols, cell):
    """Zero-mean, unit-std smooth noise of shape (rows, cols): upsampled coarse noise."""
    gr, gc = max(2, int(np.ceil(rows / cell)) + 1), max(2, int(np.ceil(cols / cell)) + 1)
    coarse = rng.standard_normal((gr, gc)).astype(np.float32)
    out = cv2.resize(coarse, (cols, rows), interpolation=cv2.INTER_CUBIC)
    std = float(out.std())
    return (out - out.mean()) / (std if std > 1e-6 else 1.0)


def _background(rng, rows, cols):
    img = _photo_crop(rng, rows, cols)
    if rng.random() < 0.45:  # a second photo blended in through a smooth random mask
        other = _photo_crop(rng, rows, cols)
        m = _smooth_noise(rng, rows, cols, rng.uniform(30, 90))
        m = np.clip(0.5 + m * rng.uniform(0.8, 3.0), 0, 1)[:, :, None]
        img = img * (1 - m) + other * m
    return img


# ---------------------------------------------------------------- shapes

def _ellipse(n=72, a0=0.0, a1=2 * np.pi, r=0.5):
    t = np.linspace(a0, a1, n, endpoint=not np.isclose(a1 - a0, 2 * np.pi))
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _class_shape(label, rng):
    """Unit-size polygons of a class object: list of (points in [-0.5, 0.5]^2, fill value)."""
    name = CLASSES[label]
    if name == "ring":
        inner = rng.uniform(0.45, 0.68)
        return [(_ellipse(), 1), (_ellipse(r=0.5 * inner), 0)]
    if name == "triangle":
        h = rng.uniform(0.85, 1.0)
        apex = rng.uniform(-0.08, 0.08)
        return [(np.array([[apex, -h / 2], [0.5, h / 2], [-0.5, h / 2]]), 1)]
    # cross
    t = rng.uniform(0.26, 0.4)
    cx, cy = rng.uniform(-0.05, 0.05, size=2)
    return [(_rect(-0.5, cy - t / 2, 0.5, cy + t / 2), 1), (_rect(cx - t / 2, -0.5, cx + t / 2, 0.5), 1)]


_DISTRACTORS = ("disk", "rect", "frame", "arc", "bar", "L", "T", "trapezoid", "chevron", "blob", "line")
_DISTRACTOR_P = np.array([1.3, 1.0, 1.1, 1.4, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2])
_DISTRACTOR_P = _DISTRACTOR_P / _DISTRACTOR_P.sum()


def _distractor_shape(kind, rng):
    """Unit-size polygons of a non-class clutter shape (many resemble parts of the classes)."""
    if kind == "disk":
        return [(_ellipse(), 1)]
    if kind == "rect":
        return [(_rect(-0.5, -0.5, 0.5, 0.5), 1)]
    if kind == "frame":  # square frame: hollow like a ring, straight like a cross
        t = rng.uniform(0.15, 0.3)
        return [(_rect(-0.5, -0.5, 0.5, 0.5), 1), (_rect(-0.5 + t, -0.5 + t, 0.5 - t, 0.5 - t), 0)]
    if kind == "arc":  # part of a ring
        span = rng.uniform(np.pi / 3, 1.3 * np.pi)
        a0 = rng.uniform(0, 2 * np.pi)
        inner = rng.uniform(0.45, 0.7)
        outer = _ellipse(48, a0, a0 + span)
        return [(np.concatenate([outer, outer[::-1] * inner]), 1)]
    if kind == "bar":  # one arm of a cross
        t = rng.uniform(0.18, 0.4)
        return [(_rect(-0.5, -t / 2, 0.5, t / 2), 1)]
    if kind in ("L", "T"):  # two arms of a cross
        t = rng.uniform(0.22, 0.4)
        if kind == "L":
            return [(_rect(-0.5, 0.5 - t, 0.5, 0.5), 1), (_rect(-0.5, -0.5, -0.5 + t, 0.5), 1)]
        return [(_rect(-0.5, -0.5, 0.5, -0.5 + t), 1), (_rect(-t / 2, -0.5, t / 2, 0.5), 1)]
    if kind == "trapezoid":  # a triangle without its apex
        top = rng.uniform(0.3, 0.6)
        return [(np.array([[-top / 2, -0.5], [top / 2, -0.5], [0.5, 0.5], [-0.5, 0.5]]), 1)]
    if kind == "chevron":  # the two sides of a triangle
        t = rng.uniform(0.18, 0.3)
        return [(np.array([[0, -0.5], [0.5, 0.5], [0.5 - t, 0.5], [0, -0.5 + 2 * t], [-0.5 + t, 0.5],
                           [-0.5, 0.5]]), 1)]
    if kind == "blob":  # irregular polygon
        n = rng.integers(5, 10)
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(0.25, 0.5, n)
        return [(np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1), 1)]
    # line: a long thin bar
    t = rng.uniform(0.01, 0.05)
    return [(_rect(-0.5, -t / 2, 0.5, t / 2), 1)]


def _transform(polys, sx, sy, angle, cx, cy):
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return [((pts * [sx, sy]) @ rot.T + [cx, cy], v) for pts, v in polys]


def _rasterise(polys):
    """Anti-aliased alpha of polygons given in image coordinates: (y0, x0, alpha float32 patch)."""
    allpts = np.concatenate([p for p, _ in polys])
    x0, y0 = int(np.floor(allpts[:, 0].min())) - 1, int(np.floor(allpts[:, 1].min())) - 1
    x1, y1 = int(np.ceil(allpts[:, 0].max())) + 1, int(np.ceil(allpts[:, 1].max())) + 1
    canvas = np.zeros(((y1 - y0) * _SS, (x1 - x0) * _SS), dtype=np.uint8)
    shift = 4
    for pts, value in polys:
        # canvas pixel j covers [j, j+1): a continuous coordinate u is pixel centre u - 0.5
        p = ((pts - [x0, y0]) * _SS - 0.5) * (1 << shift)
        cv2.fillPoly(canvas, [np.round(p).astype(np.int32)], 255 * value, lineType=cv2.LINE_8, shift=shift)
    alpha = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return y0, x0, alpha


def _clip_patch(y0, x0, alpha, rows, cols):
    """The part of a patch inside the image: (image slices, patch slices)."""
    ph, pw = alpha.shape
    ya, xa = max(y0, 0), max(x0, 0)
    yb, xb = min(y0 + ph, rows), min(x0 + pw, cols)
    if yb <= ya or xb <= xa:
        return None
    return (slice(ya, yb), slice(xa, xb)), (slice(ya - y0, yb - y0), slice(xa - x0, xb - x0))


def _full_alpha(y0, x0, alpha, rows, cols):
    full = np.zeros((rows, cols), dtype=np.float32)
    sl = _clip_patch(y0, x0, alpha, rows, cols)
    if sl is not None:
        full[sl[0]] = alpha[sl[1]]
    return full


def _mask_box(alpha, threshold=0.5):
    """Tight box x1, y1, x2, y2 of ``alpha > threshold`` (continuous pixel coordinates), or None."""
    mask = alpha > threshold
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter), inter / min(area_a, area_b)


# ---------------------------------------------------------------- textures and drawing

def _fill(rng, ph, pw, bg_mean, contrast_range, max_texture=None):
    """A textured colour patch (ph, pw, 3) float32 whose mean brightness differs from ``bg_mean``.

    ``max_texture`` caps the texture's standard deviation at that multiple of the contrast,
    so that the shape's outline is not lost in its own texture.
    """
    kind = rng.choice(5, p=[0.15, 0.25, 0.25, 0.25, 0.10])
    if kind == 0:  # flat
        tex = np.zeros((ph, pw, 1), np.float32)
    elif kind == 1:  # linear gradient
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        g = np.cos(ang) * xx + np.sin(ang) * yy
        g = (g - g.mean()) / max(float(g.std()), 1e-6)
        tex = (g * rng.uniform(8, 30))[:, :, None]
    elif kind == 2:  # smooth or fine noise
        tex = (_smooth_noise(rng, ph, pw, rng.uniform(2, 14)) * rng.uniform(8, 35))[:, :, None]
    elif kind == 3:  # patch of another photo
        tex = _photo_crop(rng, ph, pw, scale_range=(0.1, 0.5))
        tex = (tex - tex.mean(axis=(0, 1))) * np.float32(rng.uniform(0.3, 0.9))
    else:  # stripes
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        period = rng.uniform(4, 12)
        tex = (np.sin((np.cos(ang) * xx + np.sin(ang) * yy) * (2 * np.pi / period)) * rng.uniform(8, 25))[:, :, None]
    colour = rng.uniform(0, 255, size=3)
    lum = float(np.mean(bg_mean))
    sign = 1.0 if rng.random() < 0.5 else -1.0
    delta = rng.uniform(*contrast_range)
    if not 0 <= lum + sign * delta <= 255:
        sign = -sign
    if max_texture is not None:
        std = float(tex.std())
        if std > max_texture * delta:
            tex = tex * np.float32(max_texture * delta / std)
    colour = colour - colour.mean() + lum + sign * delta
    colour = 0.6 * colour + 0.4 * np.clip(colour, 0, 255)  # keep some saturation headroom
    return np.clip(tex + colour.astype(np.float32), 0, 255).astype(np.float32)


def _composite(img, y0, x0, alpha, fill, opacity=1.0):
    sl = _clip_patch(y0, x0, alpha, img.shape[0], img.shape[1])
    if sl is None:
        return
    a = (alpha[sl[1]] * opacity)[:, :, None]
    region = img[sl[0]]
    img[sl[0]] = region * (1 - a) + fill[sl[1]] * a


def _local_mean(img, y0, x0, alpha):
    sl = _clip_patch(y0, x0, alpha, img.shape[0], img.shape[1])
    if sl is None:
        return img.mean(axis=(0, 1))
    return img[sl[0]].reshape(-1, 3).mean(axis=0)


def _place(rng, polys_fn, size, aspect, angle, rows, cols, center=None):
    """Rasterise a shape at a random (or given) centre: (y0, x0, alpha)."""
    polys = polys_fn()
    sx, sy = size * np.sqrt(aspect), size / np.sqrt(aspect)
    if center is None:
        if rng.random() < 0.8 and sx < cols and sy < rows:  # inside the image
            center = (rng.uniform(sx / 2, cols - sx / 2), rng.uniform(sy / 2, rows - sy / 2))
        else:  # anywhere, possibly cut by the border
            center = (rng.uniform(-0.15 * sx, cols + 0.15 * sx), rng.uniform(-0.15 * sy, rows + 0.15 * sy))
    return _rasterise(_transform(polys, sx, sy, angle, center[0], center[1]))


def _draw_distractor(rng, img, size, center=None):
    kind = _DISTRACTORS[rng.choice(len(_DISTRACTORS), p=_DISTRACTOR_P)]
    if kind == "line":
        size = size * rng.uniform(1.5, 3.0)
    aspect = np.exp(rng.uniform(-0.5, 0.5)) if kind not in ("bar", "line") else 1.0
    y0, x0, alpha = _place(rng, lambda: _distractor_shape(kind, rng), size, aspect,
                           rng.uniform(0, 2 * np.pi), img.shape[0], img.shape[1], center)
    return y0, x0, alpha


def _render_image(rng, n_objects):
    """One image: (RGB uint8 image, boxes (N, 4), labels (N,))."""
    rows = 240 + int(rng.integers(-24, 25))
    cols = 320 + int(rng.integers(-32, 33))
    img = _background(rng, rows, cols)

    # clutter under the objects
    for _ in range(int(rng.integers(2, 8))):
        size = np.exp(rng.uniform(np.log(14), np.log(110)))
        y0, x0, alpha = _draw_distractor(rng, img, size)
        fill = _fill(rng, *alpha.shape, _local_mean(img, y0, x0, alpha), (10, 90))
        _composite(img, y0, x0, alpha, fill, rng.uniform(0.6, 1.0))

    # the objects
    objects = []  # [label, visible alpha (full image), box of the drawn mask]
    main_size = np.exp(rng.uniform(np.log(MIN_SIZE), np.log(MAX_SIZE)))
    for k in range(n_objects):
        label = int(rng.integers(len(CLASSES)))
        for _attempt in range(40):
            # one clear main object; any others are clearly smaller, so "the main object" is well defined
            size = main_size if k == 0 else max(0.8 * MIN_SIZE, main_size * rng.uniform(0.45, 0.7))
            aspect = np.exp(rng.uniform(-0.18, 0.18))
            angle = np.deg2rad(rng.uniform(-14, 14))
            y0, x0, alpha = _place(rng, lambda: _class_shape(label, rng), size, aspect, angle, rows, cols)
            full = _full_alpha(y0, x0, alpha, rows, cols)
            if full.sum() < 0.72 * alpha.sum():  # keep most of the object inside the image
                continue
            box = _mask_box(full)
            if box is None or min(box[2] - box[0], box[3] - box[1]) < 8:
                continue
            if any(max(_iou(box, o[2])) >= 0.3 for o in objects):
                continue
            if any((o[1] * full).sum() > 0.1 * o[1].sum() for o in objects):
                continue
            break
        else:
            continue
        fill = _fill(rng, *alpha.shape, _local_mean(img, y0, x0, alpha), (18, 100), max_texture=0.6)
        opacity = rng.uniform(0.75, 1.0)
        _composite(img, y0, x0, alpha, fill, opacity)
        objects.append([label, full, box])

    # occluders and clutter over the objects: never hide more than a third of an object
    n_over = int(rng.integers(0, 3)) + sum(rng.random() < 0.35 for _ in objects)
    for k in range(n_over):
        if k < len(objects) and rng.random() < 0.7:  # aimed at an object's edge
            b = objects[rng.integers(len(objects))][2]
            w, h = b[2] - b[0], b[3] - b[1]
            size = max(w, h) * rng.uniform(0.25, 0.6)
            side = rng.integers(4)
            t = rng.random()
            center = [(b[0] + t * w, b[1]), (b[0] + t * w, b[3]), (b[0], b[1] + t * h), (b[2], b[1] + t * h)][side]
        else:
            size = np.exp(rng.uniform(np.log(14), np.log(80)))
            center = None
        y0, x0, alpha = _draw_distractor(rng, img, size, center)
        full = _full_alpha(y0, x0, alpha, rows, cols)
        if any((o[1] * (1 - full)).sum() < 0.67 * o[1].sum() for o in objects):
            continue
        fill = _fill(rng, *alpha.shape, _local_mean(img, y0, x0, alpha), (10, 90))
        _composite(img, y0, x0, alpha, fill, 1.0)
        for o in objects:
            o[1] = o[1] * (1 - full)

    # whole-image degradations: illumination ramp, blur, sensor noise
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(ang) * (xx / cols - 0.5) + np.sin(ang) * (yy / rows - 0.5)) * rng.uniform(0.2, 0.6)
        img *= (1 + ramp)[:, :, None]
    if rng.random() < 0.6:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.3))
    sigma = rng.uniform(2, 10)
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    boxes, labels = [], []
    for label, vis, _ in objects:
        box = _mask_box(vis)
        if box is not None:
            boxes.append(box)
            labels.append(label)
    return img, np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(labels, dtype=np.int64)


# ---------------------------------------------------------------- the data set

def _plan(n_images, seed):
    """Split ('train'/'test') and number of objects of every image."""
    rng = np.random.default_rng([seed, 0x5EED])
    order = rng.permutation(n_images)
    n_test = int(round(TEST_FRACTION * n_images))
    split = np.array(["train"] * n_images, dtype=object)
    split[order[:n_test]] = "test"
    n_objects = rng.choice([1, 2, 3], size=n_images, p=[0.5, 0.35, 0.15])
    for part in (order[:n_test], order[n_test:]):
        n_empty = int(round(EMPTY_FRACTION * len(part)))
        if len(part) >= 2 and n_empty == 0:
            n_empty = 1
        n_objects[rng.choice(part, size=n_empty, replace=False)] = 0
    return split, n_objects


def generate(out_dir, n_images=DEMO_IMAGES, seed=DEMO_SEED, progress=None):
    """Write the demo data set as a Pascal VOC folder and return ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        Folder to write (created if needed). Existing files of the same names are replaced.
    n_images : int
        Number of images; about 30% go to the ``test`` split, the rest to ``train``,
        and about 15% of each split have no object.
    seed : int
        Seed of every random choice: the same (n_images, seed) writes the same bytes.
    progress : callable, optional
        Called as ``progress(done, total)`` after each image.

    Returns
    -------
    str
        ``out_dir``.
    """
    n_images = int(n_images)
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    out_dir = os.fspath(out_dir)
    images_dir = os.path.join(out_dir, "JPEGImages")
    os.makedirs(images_dir, exist_ok=True)
    split, n_objects = _plan(n_images, seed)
    records = {"train": [], "test": []}
    for i in range(n_images):
        rng = np.random.default_rng([seed, i])
        img, boxes, labels = _render_image(rng, int(n_objects[i]))
        image_id = f"demo_{i:04d}"
        path = os.path.join(images_dir, image_id + ".jpg")
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"cannot encode {path}")
        with open(path, "wb") as fh:
            fh.write(data.tobytes())
        records[split[i]].append(ImageRecord(image_id, path, img.shape[1], img.shape[0], boxes, labels))
        if progress is not None:
            progress(i + 1, n_images)
    for name in ("train", "test"):
        write_voc(Dataset(records[name], CLASSES), out_dir, name)
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="generate.py",
        description="Write the classic_loc demo data set (ring / triangle / cross on cluttered photo "
                    "backgrounds) as a Pascal VOC folder. Needs no download.")
    parser.add_argument("out_dir", help="folder to write (Annotations/, JPEGImages/, ImageSets/Main/, classes.txt)")
    parser.add_argument("--n-images", type=int, default=DEMO_IMAGES, help=f"number of images (default {DEMO_IMAGES})")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help=f"random seed (default {DEMO_SEED})")
    args = parser.parse_args(argv)
    if args.n_images < 1:
        parser.error("--n-images must be at least 1")
    start = time.perf_counter()
    generate(args.out_dir, args.n_images, args.seed)
    print(f"wrote {args.n_images} images to {args.out_dir} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
