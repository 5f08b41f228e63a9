"""The one dataset type every reader produces and every consumer takes.

Image ids in predictions
------------------------
:meth:`Dataset.match_image_id` is the one rule by which an ``image_id`` written
by any tool (a COCO results list, the mapping form, a file) names an image:

1. an integer (Python or numpy; never a bool), when the ground truth has its own
   COCO image ids (read from a COCO file, or records built with ``coco_id``):
   that COCO id, and nothing else;
2. otherwise the first of these rules that matches decides: the image's path
   relative to the dataset folder (forward slashes), its file name
   (``000123.jpg``), its stem (``000123``, the record's ``image_id``), the
   integer form of a numeric stem (``123`` or ``"123"`` for ``000123.jpg``; an
   integer id is only ever matched by this rule);
3. an id that is a path with folders (``a/b/000123.jpg``) and matched nothing
   is matched by the same rules on its last component (``000123.jpg``).

An id that matches two images under the rule that decided (stems ``000123``
and ``123`` for the integer 123), or no image, is a :class:`DataError` naming
it. Floats, bools and other types are refused.
"""

import os
import re
from dataclasses import dataclass, field, replace

import numpy as np

from ..boxes import as_boxes, box_area
from ..errors import DataError
from ..images import read_image

_POSITION_FORMATS = ("voc", "yolo", "csv")  # their readers number coco_id by position: not ids a user chose
_DIGITS = re.compile(r"[0-9]+")
_MAX_DIGITS = 300  # a numeric stem is a file name (at most 255 bytes): longer digit strings match nothing

__all__ = ["ImageRecord", "Dataset"]


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One image of a dataset and its ground truth.

    A record's stem is ``image_id``; its file name and relative path come from
    ``path`` and ``file_name``.

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
        else its 1-based position in the dataset). Left at None on every record, the
        Dataset numbers them by position (0 is a valid COCO id, not "not given").

    file_name : str or None
        The image's file as the annotation names it, relative to its image
        folder (COCO ``file_name``), when known: used to match predictions when
        ``path`` is None or lies elsewhere.
    areas : ndarray of shape (N,), float64
        Each object's area in pixels, which decides its COCO size range (small,
        medium, large) in the evaluator: the COCO annotation's ``area`` (for a
        segmented object its mask's area, as pycocotools uses it) when the file gives
        one, else (and by default) the box's area.
    """

    image_id: str
    path: object
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    difficult: np.ndarray = None
    crowd: np.ndarray = None
    coco_id: int = None
    file_name: str = None
    areas: np.ndarray = None

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
        if self.areas is None:
            with np.errstate(over="ignore", invalid="ignore"):  # a huge or broken box: the evaluator names it
                areas = box_area(boxes)
        else:
            areas = np.asarray(self.areas, dtype=np.float64).reshape(-1)
            if len(areas) != n:
                raise ValueError(f"{n} boxes but {len(areas)} areas")
        object.__setattr__(self, "areas", areas)
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
    own_coco_ids : bool, optional
        Whether the records' ``coco_id`` are the ground truth's own image ids,
        which an integer ``image_id`` in predictions then means (see
        :meth:`match_image_id`). Default: True when read from COCO
        (``format="coco"``) or when records are built with ``coco_id`` set;
        False when the ids only number images by position (VOC, YOLO and CSV
        readers, or no ``coco_id`` given), so that an integer id is read as a
        numeric file stem.

    Examples
    --------
    >>> ds = Dataset([ImageRecord("a", None, 64, 48, [[1, 2, 30, 40]], [0])], ["cat"])
    >>> len(ds), ds.classes, ds[0].boxes.tolist()
    (1, ('cat',), [[1.0, 2.0, 30.0, 40.0]])
    """

    def __init__(self, records, classes, category_ids=None, root="", format="", own_coco_ids=None):
        self.records = list(records)
        if own_coco_ids is None:
            own_coco_ids = format == "coco" or (format not in _POSITION_FORMATS
                                                and any(r.coco_id is not None for r in self.records))
        self.own_coco_ids = bool(own_coco_ids)
        self.classes = tuple(str(c) for c in classes)
        if category_ids is None:
            category_ids = range(1, len(self.classes) + 1)
        self.category_ids = tuple(int(c) for c in category_ids)
        if len(self.category_ids) != len(self.classes):
            raise ValueError(f"{len(self.classes)} classes but {len(self.category_ids)} category ids")
        self.root = str(root)
        self.format = format
        ids = [r.coco_id for r in self.records]
        if self.own_coco_ids and None in ids:
            raise ValueError("coco_id is given for some records and not for others: give it for all or none")
        if not self.own_coco_ids and (None in ids or len(set(ids)) != len(ids)):
            # the ids only number the images (a subset keeps its parent's numbers): number by position
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
        self._tables = None  # the name tables of match_image_id, built on first use

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
        """Position of the image ``image_id`` names (see :meth:`match_image_id`); None if none.

        An id that names two images, or is not a string or an integer, raises the
        :class:`DataError` of :meth:`match_image_id`.
        """
        try:
            return self.match_image_id(image_id)
        except DataError as err:
            if err.kind == "unknown image":
                return None
            raise

    def match_image_id(self, image_id, file="predictions", item=""):
        """Position of the image that a prediction's ``image_id`` names.

        The rule, in order (also in the module docstring and docs/evaluation.md):
        an integer when the ground truth has its own COCO ids
        (:attr:`own_coco_ids`): that COCO id only; otherwise the first rule that
        matches: the path relative to the dataset folder (forward slashes), the
        file name, the stem (``image_id``), the integer form of a numeric stem
        (an integer id is matched by this rule only); for a path with folders
        that matched nothing, the same rules on its last component.

        Parameters
        ----------
        image_id : str or int
        file, item : str
            Where the id was read, for the error message.

        Returns
        -------
        int
            The image's position in the dataset.

        Raises
        ------
        DataError
            The id names no image (kind "unknown image"), two images under the
            rule that decided (kind "ambiguous image"), or is not a string or an
            integer (kind "malformed prediction").

        Examples
        --------
        >>> ds = Dataset([ImageRecord("000123", "imgs/000123.jpg", 8, 8), ImageRecord("b", None, 8, 8)], ["x"])
        >>> ds.match_image_id(123), ds.match_image_id("000123.jpg"), ds.match_image_id("run/b")
        (0, 0, 1)
        """
        show = _show(image_id)
        if isinstance(image_id, (bool, np.bool_)):
            raise DataError(file, item, f"image_id {show} is a boolean",
                            "write the image's file stem (a string) or an integer id", kind="malformed prediction")
        if isinstance(image_id, (int, np.integer)):
            if self.own_coco_ids:
                k = self._by_coco_id.get(int(image_id))
                if k is None:
                    raise DataError(file, item, f"image_id {show} is not a COCO image id of the ground truth"
                                    f"{self._where()}", "use the image's COCO id from the ground truth file, or its "
                                    "file stem as a string, and check --gt and --split", kind="unknown image")
                return k
            found = self._lookup("the integer form of a numeric stem", "num", int(image_id))
            if found is None:
                hint = ("integer ids match numeric file stems (123 for 000123.jpg) and this ground truth has none: "
                        "write the image's file stem as a string" if not self._name_tables()["num"] else
                        "use the image's file stem, file name or path relative to the dataset folder, "
                        "and check --gt and --split")
                raise DataError(file, item, f"image_id {show} is not in the ground truth{self._where()}: no image "
                                "has this number as its file stem", hint, kind="unknown image")
            return self._unique(found, show, file, item)
        if isinstance(image_id, (float, np.floating)):
            raise DataError(file, item, f"image_id {show} is a floating-point number",
                            "write image ids as strings (the file stem) or integers", kind="malformed prediction")
        if not isinstance(image_id, str):
            raise DataError(file, item, f"image_id {show} is a {type(image_id).__name__}, not a string or an integer",
                            "write the image's file stem (a string) or an integer id", kind="malformed prediction")
        key = image_id.replace("\\", "/")
        while key.startswith("./"):
            key = key[2:]
        found = self._match_name(key)
        if found is None and "/" in key.rstrip("/"):
            found = self._match_name(key.rstrip("/").rsplit("/", 1)[1])
        if found is None:
            raise DataError(file, item, f"image_id {show} is not in the ground truth{self._where()}",
                            "use the image's file stem, file name or path relative to the dataset folder "
                            "(an integer: a numeric stem, or the COCO id when the ground truth is COCO), "
                            "and check --gt and --split", kind="unknown image")
        return self._unique(found, show, file, item)

    def matched_by_last_part(self, image_id):
        """True when ``image_id`` is a path with folders that names an image only by its last part.

        Such an id (``run/a/img.jpg``) may come from another folder than the ground
        truth's image of that name, so two of them that name one image are two images.
        """
        if not isinstance(image_id, str):
            return False
        key = image_id.replace("\\", "/")
        while key.startswith("./"):
            key = key[2:]
        return "/" in key.rstrip("/") and self._match_name(key) is None

    def _where(self):
        return f" ({self.root or 'in memory'})"

    def _match_name(self, key):
        """(rule, positions) of the first name rule that matches the string ``key``, or None."""
        for rule, table, value in (("the path relative to the dataset folder", "rel", key),
                                   ("the file name", "name", key), ("the file stem", "stem", key)):
            found = self._lookup(rule, table, value)
            if found is not None:
                return found
        if _DIGITS.fullmatch(key) and len(key) <= _MAX_DIGITS:
            return self._lookup("the integer form of a numeric stem", "num", int(key))
        return None

    def _lookup(self, rule, table, key):
        hits = self._name_tables()[table].get(key)
        return None if hits is None else (rule, hits)

    def _unique(self, found, show, file, item):
        rule, hits = found
        if len(hits) == 1:
            return hits[0]
        names = " and ".join(repr(self.records[k].path or self.records[k].image_id) for k in hits[:2])
        more = f" (and {len(hits) - 2} more)" if len(hits) > 2 else ""
        raise DataError(file, item, f"image_id {show} matches {names}{more} by {rule}",
                        "write the full file stem or the path relative to the dataset folder as the image_id",
                        kind="ambiguous image")

    def _name_tables(self):
        """rel, name, stem and num tables: key -> list of positions, built once per dataset."""
        if self._tables is not None and self._tables[0] is self.records and self._tables[1] == len(self.records):
            return self._tables[2]
        root = self.root
        folder = root if (not root or os.path.isdir(root)) else os.path.dirname(root)
        folder = os.path.normpath(folder) if folder else ""
        prefix = "" if folder in ("", ".") else folder.rstrip(os.sep) + os.sep
        tables = {"rel": {}, "name": {}, "stem": {}, "num": {}}
        for k, r in enumerate(self.records):
            keys = {"stem": r.image_id}
            if _DIGITS.fullmatch(r.image_id) and len(r.image_id) <= _MAX_DIGITS:
                keys["num"] = int(r.image_id)
            rel = set()
            if r.file_name:
                given = str(r.file_name).replace("\\", "/")
                while given.startswith("./"):
                    given = given[2:]
                rel.add(given)
                keys["name"] = given.rsplit("/", 1)[-1]
            if r.path is not None:
                path = os.path.normpath(os.fspath(r.path))
                keys["name"] = os.path.basename(path)
                if prefix and path.startswith(prefix):
                    rel.add(path[len(prefix):].replace(os.sep, "/"))
                elif not prefix and not os.path.isabs(path) and not path.startswith(".."):
                    rel.add(path.replace(os.sep, "/"))
            for table, key in keys.items():
                tables[table].setdefault(key, []).append(k)
            for key in rel:
                tables["rel"].setdefault(key, []).append(k)
        self._tables = (self.records, len(self.records), tables)
        return tables

    def image(self, index):
        """Decode image ``index``: RGB (rows, cols, 3) or gray (rows, cols) uint8."""
        rec = self.records[index]
        if rec.path is None:
            raise DataError(self.root, f"image {rec.image_id!r}", "the image has no file (the dataset was read "
                            "without its images)", "read the dataset with its image files to use the pixels",
                            kind="missing image")
        return read_image(rec.path)

    def subset(self, indices):
        """A new Dataset with the records at ``indices`` (same classes)."""
        return Dataset([self.records[i] for i in indices], self.classes, self.category_ids, self.root, self.format,
                       own_coco_ids=self.own_coco_ids)

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
        return Dataset(records, self.classes, self.category_ids, self.root, self.format,
                       own_coco_ids=self.own_coco_ids)

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


def _show(value, limit=80):
    """A short one-line repr for messages: never fails (deep nesting, huge ints) and never runs long."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlong = 3, limit, limit, limit
    if isinstance(value, np.generic):
        value = value.item()
    try:
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
            text = f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
        else:
            text = r.repr(value)
    except (ValueError, RecursionError, TypeError, OverflowError):
        text = f"<{type(value).__name__}>"
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit + 10 else text[:limit] + "..."
