"""Pascal VOC: ``Annotations/<id>.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``.

VOC pixel coordinates are 1-based and inclusive; (xmin, ymin, xmax, ymax)
becomes the package's (xmin - 1, ymin - 1, xmax, ymax) and back on writing.
An optional ``classes.txt`` at the root fixes the class order; without it the
class names found in the annotations are used, sorted.
"""

import os
import shutil
import warnings
import xml.etree.ElementTree as StdET
from xml.sax.saxutils import escape

import defusedxml.ElementTree as ET
from defusedxml import DefusedXmlException

from .._fileio import atomic_write_text
from ..errors import DataError, DataWarning
from ..images import open_regular
from ._common import (IMAGE_EXTENSIONS, Problems, check_box, check_classes, check_image_file, check_inside,
                      check_name, class_index, duplicate_error, image_size, read_lines, read_text, safe_join)
from ._dataset import Dataset, ImageRecord

__all__ = ["read_voc", "write_voc"]


def _parse_xml(path):
    try:
        with open_regular(path, "annotation file") as fh:
            return ET.parse(fh).getroot()
    except DefusedXmlException as exc:
        raise DataError(path, "", f"the XML uses a forbidden construct ({type(exc).__name__})",
                        "remove DTDs and entity definitions from the annotation", kind="malformed annotation") from None
    except StdET.ParseError as exc:
        raise DataError(path, "", f"malformed XML ({exc})", "fix or regenerate the annotation file",
                        kind="malformed annotation") from None
    except (ValueError, LookupError) as exc:  # an unknown or inconsistent encoding declaration
        raise DataError(path, "", f"malformed XML ({exc})", "fix or regenerate the annotation file",
                        kind="malformed annotation") from None
    except OSError as exc:
        raise DataError(path, "", f"cannot read the annotation ({exc.strerror})",
                        "add the XML file or remove the id from the split file", kind="missing annotation") from None


def _number(node, tag, path, item, required=True):
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if not required:
            return None
        raise DataError(path, item, f"missing <{tag}>", f"add <{tag}> to the annotation", kind="malformed annotation")
    try:
        return float(child.text.strip())
    except ValueError:
        raise DataError(path, item, f"<{tag}> is {child.text.strip()!r}, not a number",
                        f"write a number in <{tag}>", kind="malformed annotation") from None


def _split_ids(root, split):
    """(split file or Annotations folder, [(item, image id)]) of the images to read."""
    if split is None:
        ann = os.path.join(root, "Annotations")
        if not os.path.isdir(ann):
            raise DataError(ann, "", "no Annotations folder", "put one <id>.xml per image in Annotations/",
                            kind="missing folder")
        return ann, [(f"annotation {f!r}", f[:-4]) for f in sorted(os.listdir(ann)) if f.endswith(".xml")]
    path = os.path.join(root, "ImageSets", "Main", f"{split}.txt")
    if not os.path.isfile(path):
        main = os.path.join(root, "ImageSets", "Main")
        have = sorted(f[:-4] for f in os.listdir(main) if f.endswith(".txt")) if os.path.isdir(main) else []
        raise DataError(path, "", f"no split {split!r}",
                        f"choose one of {have} or pass split=None for every annotation" if have
                        else "add ImageSets/Main/<split>.txt or pass split=None for every annotation",
                        kind="missing split")
    lines = read_text(path, "split").split("\n")
    return path, [(f"line {n}", ln.split()[0]) for n, ln in enumerate(lines, 1) if ln.strip()]


def _find_image(root, images_dir, image_id, filename, xml_path):
    """The image of an annotation: its <filename> in JPEGImages/, else <id>.<ext>; never outside ``root``."""
    if filename:
        path = safe_join(images_dir, filename, xml_path, "<filename>", within=root)  # or in a linked JPEGImages/
        if os.path.lexists(path):
            return path
    for ext in IMAGE_EXTENSIONS:
        path = safe_join(images_dir, image_id + ext, xml_path, "image", within=root)
        if os.path.lexists(path):
            return path
    return safe_join(images_dir, filename or image_id + ".jpg", xml_path, "<filename>", within=root)


def _declared_size(node, xml_path):
    """(width, height) of <size>, or None when absent, empty or 0 (unknown)."""
    size = node.find("size")
    if size is None:
        return None
    w = _number(size, "width", xml_path, "<size>", required=False)
    h = _number(size, "height", xml_path, "<size>", required=False)
    return (w, h) if w and h else None


def _warn_sizes(mismatches):
    """One DataWarning for the annotations whose <size> is not the image's real size."""
    if not mismatches:
        return
    xml_path, image_path, (dw, dh), (w, h) = mismatches[0]
    more = f" (and {len(mismatches) - 1} more annotations)" if len(mismatches) > 1 else ""
    warnings.warn(f"{xml_path}: <size> says {dw:g}x{dh:g} but the image {image_path} is {w}x{h}; "
                  f"the image's real size is used{more}", DataWarning, stacklevel=3)


def _objects(node, xml_path, w, h, classes, fixed_classes, problems):
    """[(class name, box, difficult)] of one annotation; bad objects go to ``problems``."""
    objects = []
    for k, obj in enumerate(node.findall("object")):
        item = f"object {k + 1}"
        try:
            name = (obj.findtext("name") or "").strip()
            if not name:
                raise DataError(xml_path, item, "missing <name>", "name the object's class",
                                kind="malformed annotation")
            if not name.isprintable():
                raise DataError(xml_path, item, f"<name> {ascii(name)} holds a control character",
                                "write the class name in printable characters", kind="malformed annotation")
            bb = obj.find("bndbox")
            if bb is None:
                raise DataError(xml_path, item, "missing <bndbox>", "add the object's box",
                                kind="malformed annotation")
            xmin, ymin, xmax, ymax = (_number(bb, t, xml_path, item) for t in ("xmin", "ymin", "xmax", "ymax"))
            box = check_box([xmin - 1, ymin - 1, xmax, ymax], w, h, xml_path, f"{item} ({name})")
            if fixed_classes:
                class_index(name, classes, xml_path, item)
            difficult = (obj.findtext("difficult") or "0").strip() in ("1", "true", "True")
            objects.append((name, box, difficult))
        except DataError as err:
            problems.report(err)
    return objects


def read_voc(root, split="train", classes=None, skip_bad=False):
    """Read a Pascal VOC folder.

    Parameters
    ----------
    root : str
        The folder holding ``Annotations/``, ``JPEGImages/`` and ``ImageSets/Main/``.
    split : str or None
        Name of the ``ImageSets/Main/<split>.txt`` list; None reads every annotation.
    classes : sequence of str, optional
        Class order; default ``classes.txt`` at the root, else the sorted names found.
    skip_bad : bool
        Skip bad boxes and images with a warning instead of raising :class:`DataError`.

    Image ids and file names may not lead outside ``root`` (symbolic links resolved; a
    link that stays inside is fine). Each image's size is read from its header, as the
    image is shown (EXIF orientation applied); a ``<size>`` that differs is reported in
    one :class:`~classic_loc.errors.DataWarning` naming the file, and the real size is used.
    """
    root = os.fspath(root)
    problems = Problems(skip_bad)
    classes_file = os.path.join(root, "classes.txt")
    if classes is None and os.path.lexists(classes_file):
        check_inside(classes_file, root, classes_file, "", "class list")
        classes = check_classes(read_lines(classes_file, "classes"), classes_file)
    fixed_classes = classes is not None
    classes = list(classes or [])
    images_dir = os.path.join(root, "JPEGImages")
    parsed, seen, mismatches = [], set(), []
    split_file, entries = _split_ids(root, split)
    try:
        for line_item, image_id in entries:
            try:
                image_id = check_name(image_id, split_file, line_item, "image id")
                xml_path = safe_join(os.path.join(root, "Annotations"), image_id + ".xml", split_file,
                                     f"{line_item} ({image_id})", within=root, what="image id")
                if image_id in seen:
                    raise duplicate_error(split_file, image_id)
                seen.add(image_id)
                node = _parse_xml(xml_path)
                filename = (node.findtext("filename") or "").strip()
                path = _find_image(root, images_dir, image_id, filename, xml_path)
                check_image_file(path, xml_path, f"image {image_id!r}")
                declared = _declared_size(node, xml_path)
                w, h = image_size(path, xml_path, f"image {image_id!r}")
                if declared is not None and declared != (w, h):
                    mismatches.append((xml_path, path, declared, (w, h)))
                parsed.append((image_id, path, w, h, _objects(node, xml_path, w, h, classes, fixed_classes, problems)))
            except DataError as err:
                problems.report(err)
    finally:  # also when a DataError is raised: the mismatch may explain it
        _warn_sizes(mismatches)
    if not fixed_classes:
        classes = sorted({name for *_, objects in parsed for name, _, _ in objects})
    records = []
    for k, (image_id, path, w, h, objects) in enumerate(parsed):
        records.append(ImageRecord(
            image_id, path, w, h,
            boxes=[o[1] for o in objects], labels=[classes.index(o[0]) for o in objects],
            difficult=[o[2] for o in objects], coco_id=k + 1))
    problems.warn(root)
    return Dataset(records, classes, root=root, format="voc")


def _fmt(v):
    return str(int(v)) if float(v).is_integer() else format(float(v), ".10g")


def _annotation_xml(rec, classes, folder, filename, depth):
    objs = []
    for box, label, difficult in zip(rec.boxes, rec.labels, rec.difficult):
        x1, y1, x2, y2 = box
        objs.append(
            "  <object>\n"
            f"    <name>{escape(classes[label])}</name>\n"
            "    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
            f"    <difficult>{int(difficult)}</difficult>\n"
            "    <bndbox>\n"
            f"      <xmin>{_fmt(x1 + 1)}</xmin>\n      <ymin>{_fmt(y1 + 1)}</ymin>\n"
            f"      <xmax>{_fmt(x2)}</xmax>\n      <ymax>{_fmt(y2)}</ymax>\n"
            "    </bndbox>\n  </object>\n")
    return (
        "<annotation>\n"
        f"  <folder>{escape(folder)}</folder>\n  <filename>{escape(filename)}</filename>\n"
        f"  <size>\n    <width>{rec.width}</width>\n    <height>{rec.height}</height>\n"
        f"    <depth>{depth}</depth>\n  </size>\n  <segmented>0</segmented>\n"
        + "".join(objs) + "</annotation>\n")


def write_voc(dataset, out_dir, split="train", copy_images=True, depth=3):
    """Write ``dataset`` as a Pascal VOC folder (annotations, split list, classes.txt, images).

    Every file is written atomically. Images already inside ``out_dir/JPEGImages``
    are left in place; others are copied there when ``copy_images`` is true.
    An existing split list is replaced; other splits are kept.
    """
    out_dir = os.fspath(out_dir)
    images_dir = os.path.join(out_dir, "JPEGImages")
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    for rec in dataset:
        filename = os.path.basename(rec.path) if rec.path else rec.image_id + ".jpg"
        dest = os.path.join(images_dir, filename)
        if copy_images and rec.path and os.path.abspath(rec.path) != os.path.abspath(dest):
            shutil.copyfile(rec.path, dest)
        xml = _annotation_xml(rec, dataset.classes, os.path.basename(os.path.abspath(out_dir)), filename, depth)
        atomic_write_text(os.path.join(out_dir, "Annotations", rec.image_id + ".xml"), xml)
    if split is not None:
        atomic_write_text(os.path.join(out_dir, "ImageSets", "Main", f"{split}.txt"),
                          "".join(r.image_id + "\n" for r in dataset))
    atomic_write_text(os.path.join(out_dir, "classes.txt"), "".join(c + "\n" for c in dataset.classes))
    return out_dir
