"""The one dataset type every reader produces and every consumer takes."""

from dataclasses import dataclass, field, replace

import numpy as np

from ..boxes import as_boxes
from ..images import read_image

__all__ = ["ImageRecord", "Dataset"]


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One image of a dataset and its ground truth.

    Attributes
    ----------
    image_id : str
        Unique id of the image: its file stem (VOC id, CSV/YOLO/COCO file stem).
    path : str or None
        Path of the image file (None when a COCO file was read without its images).
    width, height : int
        Image size in pixels.
    boxes : ndarray of shape (N, 4), float64
        ``x1, y1, x2, y2`` in continuous pixel coordinates (see :mod:`classic_loc.boxes`).
    labels : ndarray of shape (N,), int64
        Index of each box's class in :attr:`Dataset.classes`.
    difficult : ndarray of shape (N,), bool
        VOC ``difficult`` flag; difficult boxes are ignored by the AP metrics.
    crowd : ndarray of shape (N,), bool
        COCO ``iscrowd`` flag; crowd boxes are ignored by AP as pycocotools does.
    coco_id : int
        The image's integer id in COCO files (from the file when read from COCO,
        else its 1-based position in the dataset). Left at 0 on every record, the
        Dataset numbers them by position.
    """

    image_id: str
    path: object
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    difficult: np.ndarray = None
    crowd: np.ndarray = None
    coco_id: int = 0

    def __post_init__(self):
        boxes = as_boxes(self.boxes)
        n = len(boxes)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(labels) != n:
            raise ValueError(f"{n} boxes but {len(labels)} labels")
        flags = {}
        for name in ("difficult", "crowd"):
            value = getattr(self, name)
            value = np.zeros(n, dtype=bool) if value is None else np.asarray(value, dtype=bool).reshape(-1)
            if len(value) != n:
                raise ValueError(f"{n} boxes but {len(value)} {name} flags")
            flags[name] = value
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "difficult", flags["difficult"])
        object.__setattr__(self, "crowd", flags["crowd"])

    @property
    def n_objects(self):
        return len(self.boxes)


class Dataset:
    """Images by path with their boxes, and the ordered class list.

    Images are decoded lazily by :meth:`image`, never all held in memory.

    Parameters
    ----------
    records : sequence of ImageRecord
    classes : sequence of str
        Class names; ``labels`` index into it.
    category_ids : sequence of int, optional
        COCO category id of each class (default 1..K).
    root : str, optional
        Folder (or file) the dataset was read from, for messages.
    format : str, optional
        The format it was read from.

    Examples
    --------
    >>> ds = Dataset([ImageRecord("a", None, 64, 48, [[1, 2, 30, 40]], [0])], ["cat"])
    >>> len(ds), ds.classes, ds[0].boxes.tolist()
    (1, ('cat',), [[1.0, 2.0, 30.0, 40.0]])
    """

    def __init__(self, records, classes, category_ids=None, root="", format=""):
        self.records = list(records)
        self.classes = tuple(str(c) for c in classes)
        if category_ids is None:
            category_ids = range(1, len(self.classes) + 1)
        self.category_ids = tuple(int(c) for c in category_ids)
        if len(self.category_ids) != len(self.classes):
            raise ValueError(f"{len(self.classes)} classes but {len(self.category_ids)} category ids")
        self.root = str(root)
        self.format = format
        if self.records and all(r.coco_id == 0 for r in self.records):  # ids not given: number by position
            self.records = [replace(r, coco_id=k + 1) for k, r in enumerate(self.records)]
        coco_ids = [r.coco_id for r in self.records]
        if len(set(coco_ids)) != len(coco_ids):
            raise ValueError("duplicate COCO image ids among the records")
        ids = [r.image_id for r in self.records]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"duplicate image id {dup!r}")
        self._by_id = {r.image_id: k for k, r in enumerate(self.records)}
        self._by_coco_id = {r.coco_id: k for k, r in enumerate(self.records)}

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        return self.records[index]

    def __iter__(self):
        return iter(self.records)

    def __repr__(self):
        n_boxes = sum(r.n_objects for r in self.records)
        return (f"Dataset({len(self)} images, {n_boxes} boxes, classes={list(self.classes)}, "
                f"format={self.format!r}, root={self.root!r})")

    def index_of(self, image_id):
        """Position of an image given its id (file stem) or its COCO integer id; None if unknown."""
        if isinstance(image_id, (int, np.integer)) and not isinstance(image_id, bool):
            return self._by_coco_id.get(int(image_id))
        return self._by_id.get(str(image_id))

    def image(self, index):
        """Decode image ``index``: RGB (rows, cols, 3) or gray (rows, cols) uint8."""
        rec = self.records[index]
        if rec.path is None:
            raise ValueError(f"{self.root}: image {rec.image_id!r} has no file (dataset read without images)")
        return read_image(rec.path)

    def subset(self, indices):
        """A new Dataset with the records at ``indices`` (same classes)."""
        return Dataset([self.records[i] for i in indices], self.classes, self.category_ids, self.root, self.format)

    def holdout_split(self, fraction=0.3, seed=0):
        """Split into (train, test) with a seeded random ``fraction`` of images held out."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self))
        n_test = int(round(fraction * len(self)))
        test = np.sort(order[:n_test])
        train = np.sort(order[n_test:])
        return self.subset(train), self.subset(test)

    def with_records(self, records):
        """A new Dataset with the same classes and other records."""
        return Dataset(records, self.classes, self.category_ids, self.root, self.format)

    def counts(self):
        """Images, boxes and boxes per class: a dict for reports and tests."""
        per_class = np.zeros(len(self.classes), dtype=np.int64)
        for r in self.records:
            np.add.at(per_class, r.labels, 1)
        return {
            "images": len(self),
            "boxes": int(per_class.sum()),
            "difficult": int(sum(r.difficult.sum() for r in self.records)),
            "empty_images": sum(1 for r in self.records if r.n_objects == 0),
            "per_class": dict(zip(self.classes, per_class.tolist())),
        }
