"""Hostile input to the annotation readers and the image decoder: one DataError line, never a
crash, a hang, a silent wrong size, or a path leaving the dataset folder (issue 11)."""

import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib

import cv2
import numpy as np
import pytest

from classic_loc import images as images_module
from classic_loc._imageheader import read_header
from classic_loc.datasets import read_coco, read_csv, read_voc, read_yolo
from classic_loc.datasets.coco import MAX_JSON_DEPTH, json_depth, load_json
from classic_loc.errors import DataError, DataWarning
from classic_loc.images import MAX_IMAGE_PIXELS, image_size, read_image


def _error(fn, *args, match, kind=None, **kwargs):
    with pytest.raises(DataError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    if kind is not None:
        assert info.value.kind == kind
    return info.value


def _png(path, rows=16, cols=16, value=90):
    os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
    assert cv2.imwrite(str(path), np.full((rows, cols, 3), value, np.uint8))
    return path


# ----------------------------------------------------------------------------- 1. COCO
def _coco(tmp_path, edit=None, text=None):
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 16}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 10, 9], "iscrowd": 0}],
           "categories": [{"id": 3, "name": "cat"}]}
    if edit:
        edit(doc)
    path = tmp_path / "gt.json"
    path.write_text(text if text is not None else json.dumps(doc, allow_nan=True))
    return path


def _coco_error(tmp_path, edit=None, text=None, match="", **kw):
    return _error(read_coco, _coco(tmp_path, edit, text), require_images=False, match=match, **kw)


def test_coco_deep_nesting_is_refused_with_the_documented_limit(tmp_path):
    assert MAX_JSON_DEPTH == 100
    _coco_error(tmp_path, text="[" * 5000 + "]" * 5000, match=r"gt.json: JSON nested deeper than 100 levels")
    # deep enough for the documented limit but not for Python's recursion: still refused
    _coco_error(tmp_path, lambda d: d["images"][0].update(extra=json.loads("[" * 150 + "]" * 150)),
                match=r"gt.json: JSON nested deeper than 100 levels; write a flat")
    # 97 levels inside an image (itself at level 3) is exactly 100: allowed; brackets in strings do not count
    ok = _coco(tmp_path, lambda d: d["images"][0].update(note="[[[[" * 100, extra=json.loads("[" * 97 + "]" * 97)))
    assert read_coco(ok, require_images=False)[0].boxes.tolist() == [[1, 2, 11, 11]]
    _coco_error(tmp_path, lambda d: d["images"][0].update(extra=json.loads("[" * 98 + "]" * 98)),
                match=r"JSON nested deeper than 100 levels")
    assert json_depth(b'{"a": "]]]\\"[[[", "b": [[1], {"c": [2]}]}') == 4
    assert json_depth(b'["\\\\", [["x"]]]') == 3


@pytest.mark.parametrize("token, line", [("NaN", 1), ("Infinity", 2), ("-Infinity", 2), ("1e999", 2)])
def test_coco_non_finite_numbers_never_become_a_box(tmp_path, token, line):
    width, box = (token, "10") if line == 1 else ("16", token)
    text = (f'{{"images": [{{"id": 1, "file_name": "a.png", "width": {width}, "height": 16}}],\n'
            f'"annotations": [{{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, {box}, 9]}}], '
            '"categories": [{"id": 3, "name": "cat"}]}')
    _coco_error(tmp_path, text=text, match=rf"gt.json: line {line} column \d+: {token} is not a finite number "
                                           r"\(not standard JSON\); write finite numbers", kind="malformed file")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["images"][0].update(id={"a": 1}), r"images\[0\]: id \{\"a\": 1\} is not an integer; write id as an integer"),
    (lambda d: d["images"][0].update(id=2 ** 70), r"images\[0\]: id 1180591620717411303424 is out of the 64-bit"),
    (lambda d: d["images"][0].update(id=True), r"images\[0\]: id True is not an integer"),
    (lambda d: d["annotations"][0].update(image_id=[1]), r"annotations\[0\]: image_id \[1\] is not an integer"),
    (lambda d: d["annotations"][0].update(category_id="3"), r"annotations\[0\]: category_id \"3\" is not an integer"),
    (lambda d: d["categories"][0].update(id=3.0), r"categories\[0\]: id 3.0 is not an integer"),
    (lambda d: d["categories"][0].update(name=None), r"categories\[0\]: category name None is not a non-empty"),
    (lambda d: d["annotations"][0].update(bbox="1,2,3,4"), r"annotations\[0\]: bbox \"1,2,3,4\" is not 4 numbers; "
                                                           r"write bbox as \[x, y, width, height\], 4 finite numbers"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, True, 4]), r"bbox \[1, 2, true, 4\] is not 4 numbers"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 10 ** 400, 4]), r"bbox \[1, 2, 1000.* is not 4 numbers"),
    (lambda d: d["annotations"][0].update(bbox=[5, 2, -3, 4]), r"annotations\[0\]: box \(x1=5, y1=2, x2=2, y2=6\) "
                                                               r"has x2 <= x1"),
    (lambda d: d["annotations"][0].update(segmentation="garbage"), r"annotations\[0\]: segmentation \"garbage\" is "
                                                                   r"neither polygons \(a list\) nor RLE"),
    (lambda d: d["annotations"][0].update(segmentation=[["a"]]), r"segmentation polygons are not lists of finite"),
    (lambda d: d["annotations"][0].update(area=-1), r"annotations\[0\]: area -1 is not a non-negative number"),
    (lambda d: d["annotations"][0].update(iscrowd="yes"), r"annotations\[0\]: iscrowd \"yes\" is not 0 or 1"),
    (lambda d: d.update(images={"id": 1}), r"gt.json: missing or non-list 'images'"),
    (lambda d: d.update(annotations=None), r"gt.json: missing or non-list 'annotations'"),
    (lambda d: d["annotations"].append(7), r"annotations\[1\]: 7 is not a JSON object; write every annotation as an"),
    (lambda d: d["categories"].insert(0, "cat"), r"categories\[0\]: \"cat\" is not a JSON object"),
    (lambda d: d["images"][0].update(width=True), r"images\[0\] \(a.png\): missing or non-positive width/height"),
    (lambda d: d["images"][0].update(width=-16), r"images\[0\] \(a.png\): missing or non-positive width/height"),
    (lambda d: d["images"][0].update(height=15.5), r"height 15.5 is not a whole number of pixels up to 1048576"),
    (lambda d: d["images"][0].update(width=2 ** 40), r"width 1099511627776 is not a whole number of pixels up to"),
    (lambda d: d["images"][0].update(file_name=5), r"images\[0\]: image file name 5 is not a string"),
    (lambda d: d["images"][0].update(file_name=None), r"images\[0\]: image file name None is not a string"),
])
def test_coco_every_field_has_its_type(tmp_path, edit, message):
    _coco_error(tmp_path, edit, match=message)


def test_coco_valid_file_still_reads_with_integral_float_sizes(tmp_path):
    ds = read_coco(_coco(tmp_path, lambda d: d["images"][0].update(width=16.0)), require_images=False)
    assert (ds[0].width, ds[0].height, ds[0].coco_id) == (16, 16, 1)
    assert ds[0].boxes.tolist() == [[1, 2, 11, 11]]


def test_load_json_refuses_huge_integers_bad_text_and_non_files(tmp_path):
    (tmp_path / "big.json").write_text("[" + "9" * 5000 + "]")
    _error(load_json, tmp_path / "big.json", "predictions", match=r"big.json: malformed JSON \(Exceeds the limit")
    (tmp_path / "latin.json").write_bytes(b'["\xe9"]')
    _error(load_json, tmp_path / "latin.json", "predictions", match=r"latin.json: the predictions file is not UTF-8")
    (tmp_path / "dir.json").mkdir()
    _error(load_json, tmp_path / "dir.json", "predictions",
           match=r"dir.json: the predictions file path is a folder, not a regular file; give the path of a "
                 r"predictions file$", kind="not a file")
    assert load_json(_coco(tmp_path), "COCO")["categories"] == [{"id": 3, "name": "cat"}]


# ----------------------------------------------------------------------------- 2. VOC, YOLO, CSV
def _voc(root, size="<width>16</width><height>16</height>", box=(2, 3, 12, 16), image=(16, 16), split="img1\n",
         extra="", head=""):
    _png(root / "JPEGImages" / "img1.png", image[1], image[0])
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    xmin, ymin, xmax, ymax = box
    (root / "Annotations" / "img1.xml").write_text(
        f"{head}<annotation><filename>img1.png</filename><size>{size}<depth>3</depth></size><object><name>cat</name>"
        f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        f"{extra}</annotation>")
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text(split)
    return root


@pytest.mark.parametrize("kw, message", [
    (dict(head='<?xml version="1.0" encoding="nonsense"?>'), r"img1.xml: malformed XML \(unknown encoding"),
    (dict(head='<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]>'), r"img1.xml: the XML uses a forbidden"),
    (dict(box=(2, 3, "", 16)), r"img1.xml: object 1: missing <xmax>; add <xmax>"),
    (dict(box=(2, 3, "1e999", 16)), r"img1.xml: object 1 \(cat\): box \[1.0, 2.0, inf, 16.0\] has a non-finite"),
    (dict(box=("nan", 3, 12, 16)), r"object 1 \(cat\): box \[nan, 2.0, 12.0, 16.0\] has a non-finite"),
    (dict(box=(2, 3, "1e300", 16)), r"object 1 \(cat\): box .* lies outside the 16x16 image"),
    (dict(box=(2, 3, "twelve", 16)), r"object 1: <xmax> is 'twelve', not a number"),
    (dict(extra="<object><name>cat</name></object>"), r"img1.xml: object 2: missing <bndbox>"),
    (dict(extra="<object><bndbox/></object>"), r"img1.xml: object 2: missing <name>"),
    (dict(size="<width>x</width><height>16</height>"), r"img1.xml: <size>: <width> is 'x', not a number"),
    (dict(split="img1\x00\n"), r"train.txt: line 1: image id 'img1\\x00' holds the character '\\x00'"),
])
def test_voc_odd_fields_are_one_line_errors(tmp_path, kw, message):
    _error(read_voc, _voc(tmp_path, **kw), "train", match=message)


def test_voc_huge_or_odd_declared_sizes_give_the_real_size(tmp_path):
    for size in ("<width>1e999</width><height>16</height>", "<width>-16</width><height>nan</height>"):
        with pytest.warns(DataWarning, match=r"img1.xml: <size> says (inf|-16)x(16|nan) but the image .* is 16x16"):
            ds = read_voc(_voc(tmp_path, size=size), "train")
        assert (ds[0].width, ds[0].height) == (16, 16)


def test_voc_without_annotations_folder(tmp_path):
    tmp_path.joinpath("ImageSets").mkdir()
    _error(read_voc, tmp_path, None, match=r"Annotations: no Annotations folder", kind="missing folder")


def test_yolo_and_csv_nul_names_and_repeated_classes(tmp_path):
    root = tmp_path / "y"
    _png(root / "images" / "a.png")
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("cat\ncat\n")
    _error(read_yolo, root, None, match=r"classes.txt: class 2: class name 'cat' is listed twice; list every class once")
    (root / "classes.txt").write_text("cat\n")
    (root / "train.txt").write_text("a\x00.png\n")
    _error(read_yolo, root, "train", match=r"train.txt: line 1: image file name 'a\\x00.png' holds the character",
           kind="bad file name")
    csv_dir = tmp_path / "c"
    _png(csv_dir / "a.png")
    (csv_dir / "train.csv").write_text("a\x00.png,cat,1,1,5,5\n")
    _error(read_csv, csv_dir / "train.csv", match=r"train.csv: line 1: image file name 'a\\x00.png' holds the character")
    (csv_dir / "train.csv").write_text("a.png,cat,1,1,5,5,16,16\n")
    (csv_dir / "train.csv").write_text("image,label,x1,y1,x2,y2,width,height\na.png,cat,1,1,5,5,1e999,16\n")
    _error(read_csv, csv_dir / "train.csv", match=r"line 2: image size 1e999x16 is not two positive integers")


# ----------------------------------------------------------------------------- 3. declared VOC size
def test_voc_declared_size_differing_from_the_image_warns_and_the_real_size_is_used(tmp_path, monkeypatch):
    root = _voc(tmp_path, size="<width>40</width><height>30</height>", image=(20, 16), box=(1, 1, 20, 16))
    # sizes come from the header alone: decoding would fail here
    monkeypatch.setattr(images_module.cv2, "imdecode", lambda *a: pytest.fail("decoded pixels to read a size"))
    with pytest.warns(DataWarning) as record:
        ds = read_voc(root, "train")
    assert len(record) == 1
    assert str(record[0].message) == (f"{root / 'Annotations' / 'img1.xml'}: <size> says 40x30 but the image "
                                      f"{root / 'JPEGImages' / 'img1.png'} is 20x16; the image's real size is used")
    assert (ds[0].width, ds[0].height) == (20, 16)
    assert ds[0].boxes.tolist() == [[0, 0, 20, 16]]
    # a box that fits the declared size but not the real one is an error, not silently kept
    root = _voc(tmp_path / "b", size="<width>40</width><height>30</height>", image=(20, 16), box=(1, 1, 40, 30))
    with pytest.warns(DataWarning, match="says 40x30"):
        _error(read_voc, root, "train", match=r"object 1 \(cat\): box .* lies outside the 20x16 image")


def test_voc_many_size_mismatches_give_one_warning_with_a_count(tmp_path):
    root = _voc(tmp_path, size="<width>40</width><height>30</height>", split="img1\nimg2\n")
    (root / "Annotations" / "img2.xml").write_text((root / "Annotations" / "img1.xml").read_text()
                                                   .replace("img1.png", "img2.png"))
    _png(root / "JPEGImages" / "img2.png")
    with pytest.warns(DataWarning, match=r"img1.xml: <size> says 40x30 .* is 16x16; the image's real size is used "
                                         r"\(and 1 more annotations\)$") as record:
        read_voc(root, "train")
    assert len(record) == 1


# ----------------------------------------------------------------------------- 4. EXIF orientation
@pytest.mark.parametrize("orientation, shown", [(1, (20, 40)), (3, (20, 40)), (6, (40, 20)), (8, (40, 20))])
def test_exif_orientation_decodes_as_shown_and_header_sizes_agree(tmp_path, orientation, shown):
    Image = pytest.importorskip("PIL.Image")
    from PIL import ImageOps

    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)  # a red band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    Image.fromarray(rgb).save(path, quality=100, exif=exif.tobytes())
    img = read_image(path)
    assert img.shape == (*shown, 3)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert np.abs(img.astype(int) - expected).max() <= 2
    assert image_size(path) == (shown[1], shown[0])
    with open(path, "rb") as fh:
        assert read_header(fh).orientation == orientation
    if orientation == 6:  # rotated 90 degrees clockwise: the red band is now at the top
        assert img[0, 10].tolist()[0] > 200 and img[-1, 10].tolist()[0] < 50
    # a VOC dataset over it takes the shown size; its declared raw size 40x20 is a warning
    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "JPEGImages" / "o.jpg").write_bytes(path.read_bytes())
    (root / "Annotations").mkdir()
    (root / "Annotations" / "o.xml").write_text("<annotation><filename>o.jpg</filename><size><width>40</width>"
                                                "<height>20</height></size></annotation>")
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("o\n")
    if shown == (20, 40):
        ds = read_voc(root, "train")
    else:
        with pytest.warns(DataWarning, match=r"o.xml: <size> says 40x20 but the image .* is 20x40"):
            ds = read_voc(root, "train")
    assert (ds[0].height, ds[0].width) == shown


@pytest.mark.parametrize("ext", ["png", "webp", "tif"])
def test_exif_orientation_in_png_webp_tiff(tmp_path, ext):
    Image = pytest.importorskip("PIL.Image")
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / f"o.{ext}"
    Image.fromarray(np.zeros((20, 40, 3), np.uint8)).save(path, exif=exif.tobytes())
    assert read_image(path).shape == (40, 20, 3) and image_size(path) == (20, 40)


def test_16_bit_alpha_and_gray_are_kept_as_before(tmp_path):
    cv2.imwrite(str(tmp_path / "d.png"), np.array([[0, 1000], [2000, 4000]], np.uint16))
    assert read_image(tmp_path / "d.png").tolist() == [[0, 64], [128, 255]]  # scaled by 255 / max
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 255, 7  # blue, nearly transparent
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert read_image(tmp_path / "a.png").shape == (2, 3, 3) and read_image(tmp_path / "a.png")[0, 0].tolist() == [0, 0, 255]
    cv2.imwrite(str(tmp_path / "g.jpg"), np.full((5, 7), 77, np.uint8))
    assert read_image(tmp_path / "g.jpg").shape == (5, 7)


@pytest.mark.parametrize("ext", ["jpg", "png", "bmp", "tif", "webp", "pgm", "ppm", "gif"])
def test_header_sizes_of_every_format_match_the_decoder(tmp_path, ext):
    path = tmp_path / f"x.{ext}"
    img = np.zeros((13, 29, 3), np.uint8)
    if ext == "pgm":
        img = img[..., 0]
    assert cv2.imwrite(str(path), img)
    with open(path, "rb") as fh:
        header = read_header(fh)
    assert (header.width, header.height) == (29, 13)
    assert image_size(path) == (29, 13) and read_image(path).shape[:2] == (13, 29)


def test_the_predict_path_does_not_need_pil(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((6, 9, 3), np.uint8))
    code = ("import sys; sys.modules['PIL'] = None\n"  # any import of PIL now fails
            "from classic_loc.images import image_size, read_image\nimport classic_loc.datasets\n"
            "print(image_size(sys.argv[1]), read_image(sys.argv[1]).shape)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.jpg")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(9, 6) (6, 9, 3)"


# ----------------------------------------------------------------------------- 5. image too large
def _huge_png(path, width=40000, height=40000):
    """A 40000x40000 PNG header (IHDR written by hand) with a tiny truncated IDAT."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
                     + chunk(b"IEND", b""))
    return path


def test_a_40000_square_png_is_refused_from_its_header_quickly(tmp_path):
    assert MAX_IMAGE_PIXELS == 100_000_000
    path = _huge_png(tmp_path / "huge.png")
    start = time.perf_counter()
    for fn in (read_image, image_size):
        _error(fn, path, match=r"huge.png: image too large: 40000x40000 is 1,600,000,000 pixels, over the limit of "
                               r"100,000,000; downscale the image, or raise the limit with "
                               r"CLASSIC_LOC_MAX_IMAGE_PIXELS=<pixels>", kind="image too large")
    assert time.perf_counter() - start < 5.0
    # in a dataset the error comes at load time, before any training
    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    _huge_png(root / "JPEGImages" / "img1.png")
    (root / "Annotations").mkdir()
    (root / "Annotations" / "img1.xml").write_text("<annotation><filename>img1.png</filename></annotation>")
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("img1\n")
    _error(read_voc, root, "train", match=r"img1.png: image too large: 40000x40000")


def test_the_pixel_limit_is_overridable_by_the_environment(tmp_path, monkeypatch):
    path = _png(tmp_path / "a.png", 16, 16)
    monkeypatch.setenv("CLASSIC_LOC_MAX_IMAGE_PIXELS", "255")
    _error(read_image, path, match=r"image too large: 16x16 is 256 pixels, over the limit of 255")
    monkeypatch.setenv("CLASSIC_LOC_MAX_IMAGE_PIXELS", "256")
    assert read_image(path).shape == (16, 16, 3)
    monkeypatch.setenv("CLASSIC_LOC_MAX_IMAGE_PIXELS", "lots")
    _error(read_image, path, match=r"CLASSIC_LOC_MAX_IMAGE_PIXELS: 'lots' is not a positive whole number of pixels")
    monkeypatch.setenv("CLASSIC_LOC_MAX_IMAGE_PIXELS", "40000")
    _huge_png(tmp_path / "sun.png", 250, 200)
    _error(read_image, tmp_path / "sun.png", match=r"sun.png: image too large: 250x200")


def test_formats_without_a_header_reader_are_checked_once_decoded(tmp_path, monkeypatch):
    path = tmp_path / "a.ras"  # Sun raster: decoded by OpenCV, not read by the header reader
    assert cv2.imwrite(str(path), np.zeros((16, 20, 3), np.uint8))
    with open(path, "rb") as fh:
        assert read_header(fh) is None
    assert image_size(path) == (20, 16)
    monkeypatch.setenv("CLASSIC_LOC_MAX_IMAGE_PIXELS", "100")
    _error(read_image, path, match=r"a.ras: image too large: 20x16 is 320 pixels, over the limit of 100")


def test_a_damaged_header_is_not_trusted(tmp_path):
    path = tmp_path / "t.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with open(path, "rb") as fh:
        assert read_header(fh) is None
    _error(image_size, path, match=r"t.png: cannot decode the image", kind="undecodable image")
    path.write_bytes(b"\xff\xd8\xff\xe0\x00")
    _error(read_image, path, match=r"t.png: cannot decode the image")


# ----------------------------------------------------------------------------- 6. FIFO, folder, device, odd names
def _finishes(fn, *args, timeout=10):
    """Call ``fn`` in a thread; the DataError it raised, failing if it is still blocked after ``timeout`` s."""
    result = {}

    def target():
        try:
            fn(*args)
            result["value"] = None
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            result["value"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{fn.__name__} blocked on a FIFO"
    assert isinstance(result["value"], DataError), result["value"]
    assert "\n" not in str(result["value"])
    return result["value"]


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")


@needs_fifo
def test_a_fifo_named_like_an_image_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "a.jpg"
    os.mkfifo(fifo)
    for fn in (read_image, image_size):
        err = _finishes(fn, fifo)
        assert str(err) == (f"{fifo}: the image path is a FIFO (named pipe), not a regular file; "
                            "give the path of an image file") and err.kind == "not a file"
    voc = _voc(tmp_path / "voc")
    (voc / "JPEGImages" / "img1.png").unlink()
    os.mkfifo(voc / "JPEGImages" / "img1.png")
    assert "img1.png is not a regular file (a folder, FIFO or device)" in str(_finishes(read_voc, voc, "train"))
    os.mkfifo(tmp_path / "gt.json")
    assert "gt.json: the COCO annotation file path is a FIFO" in str(_finishes(read_coco, tmp_path / "gt.json"))


@needs_fifo
def test_yolo_fifo_image_and_label_and_voc_fifo_annotation(tmp_path):
    root = tmp_path / "y"
    os.makedirs(root / "images" / "train")
    os.makedirs(root / "labels" / "train")
    (root / "classes.txt").write_text("cat\n")
    os.mkfifo(root / "images" / "train" / "a.jpg")
    assert "a.jpg is not a regular file" in str(_finishes(read_yolo, root, "train"))
    os.unlink(root / "images" / "train" / "a.jpg")
    _png(root / "images" / "train" / "a.png")
    os.mkfifo(root / "labels" / "train" / "a.txt")
    assert "a.txt: the label file path is a FIFO (named pipe)" in str(_finishes(read_yolo, root, "train"))
    voc = _voc(tmp_path / "voc")
    (voc / "Annotations" / "img1.xml").unlink()
    os.mkfifo(voc / "Annotations" / "img1.xml")
    assert "img1.xml: the annotation file path is a FIFO" in str(_finishes(read_voc, voc, "train"))


def test_folders_and_devices_named_like_images(tmp_path):
    (tmp_path / "d.jpg").mkdir()
    _error(read_image, tmp_path / "d.jpg", match=r"d.jpg: the image path is a folder, not a regular file",
           kind="not a file")
    if os.path.exists("/dev/null"):
        _error(read_image, "/dev/null", match=r"/dev/null: the image path is a device, not a regular file")
    csv_dir = tmp_path / "c"
    (csv_dir / "a.png").mkdir(parents=True)
    (csv_dir / "train.csv").write_text("a.png,cat,1,1,5,5\n")
    _error(read_csv, csv_dir / "train.csv", match=r"line 1: image file .*a.png is not a regular file", kind="not a file")


@pytest.mark.parametrize("name, shown", [("a\x00.png", r"'a\\x00.png' holds the character '\\x00'"),
                                         ("a\n.png", r"'a\\n.png' holds the character '\\n'"),
                                         ("a\ud800.png", r"'a\\ud800.png' holds the character '\\ud800'"),
                                         ("a\x7f.png", r"'a\\x7f.png' holds the character '\\x7f'")])
def test_odd_characters_in_coco_file_names(tmp_path, name, shown):
    _png(tmp_path / "a.png")
    err = _coco_error(tmp_path, lambda d: d["images"][0].update(file_name=name), match=rf"images\[0\]: image file name {shown}")
    assert err.kind == "bad file name"


def test_odd_characters_in_paths_given_to_read_image(tmp_path):
    _error(read_image, str(tmp_path / "a\x00.png"), match=r"a\\x00.png: the file name holds a NUL byte",
           kind="bad file name")
    _error(read_image, str(tmp_path / "a\ud800.png"), match=r"a\\ud800.png: the file name holds a NUL byte or",
           kind="bad file name")
    odd = tmp_path / "new\nline.png"
    _png(odd)
    assert read_image(odd).shape == (16, 16, 3)  # a real file with an odd name is read
    _error(read_image, tmp_path / "no\nsuch.png", match=r"no\\nsuch.png: cannot read the image")


# ----------------------------------------------------------------------------- 7. path safety
@pytest.mark.parametrize("split, message", [
    ("../../x\n", r"train.txt: line 1 \(../../x\): image id '../../x.xml' points outside the dataset folder"),
    ("/etc/passwd\n", r"train.txt: line 1 \(/etc/passwd\): image id '/etc/passwd.xml' is empty or absolute"),
    ("../Annotations/img1\n", None),  # leaves Annotations/ but stays inside the dataset: allowed
])
def test_voc_split_ids_cannot_leave_the_folder(tmp_path, split, message):
    root = _voc(tmp_path / "data", split=split)
    (tmp_path / "x.xml").write_text("<annotation/>")
    if message is None:
        assert len(read_voc(root, "train")) == 1
    else:
        _error(read_voc, root, "train", match=message, kind="unsafe path")


def test_coco_and_csv_file_names_cannot_leave_the_folder(tmp_path):
    _png(tmp_path / "outside.png")
    data = tmp_path / "data"
    _png(data / "a.png")
    err = _error(read_coco, _coco(data, lambda d: d["images"][0].update(file_name="../outside.png")),
                 match=r"images\[0\] \(../outside.png\): image file name '../outside.png' points outside the dataset "
                       r"folder", kind="unsafe path")
    assert str(data) in str(err)
    (data / "train.csv").write_text("../outside.png,cat,1,1,5,5\n")
    _error(read_csv, data / "train.csv", match=r"line 1: image file name '../outside.png' points outside",
           kind="unsafe path")
    os.symlink(tmp_path / "outside.png", data / "link.png")
    (data / "train.csv").write_text("link.png,cat,1,1,5,5\n")
    _error(read_csv, data / "train.csv", match=r"image file name 'link.png' points outside", kind="unsafe path")


def _yolo_root(root):
    _png(root / "images" / "train" / "a.png")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "classes.txt").write_text("cat\n")
    return root


def test_yolo_symlinks_leading_outside_are_refused_and_inside_ones_read(tmp_path):
    outside = _png(tmp_path / "outside.png")
    (tmp_path / "outside.txt").write_text("0 0.5 0.5 1 1\n")
    root = _yolo_root(tmp_path / "data")
    os.symlink(outside, root / "images" / "train" / "b.png")
    err = _error(read_yolo, root, "train", match=r"images/train: image 'b.png': the image .*b.png is a symbolic link "
                                                 r"leading outside the dataset folder", kind="unsafe path")
    assert str(outside) in str(err)
    os.unlink(root / "images" / "train" / "b.png")
    os.symlink(tmp_path / "outside.txt", root / "labels" / "train" / "b.txt")
    _png(root / "images" / "train" / "b.png")
    _error(read_yolo, root, "train", match=r"b.txt: the label file .*b.txt is a symbolic link leading outside",
           kind="unsafe path")
    # links that stay inside the dataset folder are fine
    os.unlink(root / "labels" / "train" / "b.txt")
    os.unlink(root / "images" / "train" / "b.png")
    _png(root / "pool" / "c.png", 10, 20)
    (root / "pool" / "c.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    os.symlink(root / "pool" / "c.png", root / "images" / "train" / "c.png")
    os.symlink(os.path.join("..", "..", "pool", "c.txt"), root / "labels" / "train" / "c.txt")
    ds = read_yolo(root, "train")
    assert [r.image_id for r in ds] == ["a", "c"]
    assert (ds[1].width, ds[1].height) == (20, 10) and ds[1].boxes.tolist() == [[5.0, 2.5, 15.0, 7.5]]


def test_voc_image_symlinked_inside_the_dataset_is_fine_outside_refused(tmp_path):
    root = _voc(tmp_path / "data")
    (root / "JPEGImages" / "img1.png").unlink()
    _png(root / "pool" / "img1.png")
    os.symlink(root / "pool" / "img1.png", root / "JPEGImages" / "img1.png")
    assert read_voc(root, "train")[0].boxes.tolist() == [[1, 2, 12, 16]]
    _png(tmp_path / "far.png")
    (root / "JPEGImages" / "img1.png").unlink()
    os.symlink(tmp_path / "far.png", root / "JPEGImages" / "img1.png")
    _error(read_voc, root, "train", match=r"img1.xml: <filename>: image file name 'img1.png' points outside the dataset",
           kind="unsafe path")


@needs_fifo
def test_load_dataset_refuses_a_fifo_path_and_unknown_formats(tmp_path):
    from classic_loc import load_dataset

    os.mkfifo(tmp_path / "data")
    assert "data: is neither a regular file nor a folder" in str(_finishes(load_dataset, tmp_path / "data"))
    _error(load_dataset, tmp_path, format="pascal", match=r": unknown format 'pascal'; use 'auto' or one of voc, coco")


def test_coco_declared_size_differing_from_the_image_warns_and_the_real_size_is_used(tmp_path):
    _png(tmp_path / "a.png", 12, 20)  # 20 wide, 12 high; the file says 16x16
    path = _coco(tmp_path, lambda d: d["annotations"][0].update(bbox=[1, 2, 10, 13]))
    with pytest.warns(DataWarning) as record:
        _error(read_coco, path, match=r"annotations\[0\]: box \(x1=1, y1=2, x2=11, y2=15\) lies outside the 20x12 image")
    assert [str(w.message) for w in record] == [
        f"{path}: images[0] (a.png): width/height say 16x16 but the image {tmp_path / 'a.png'} is 20x12; "
        "the image's real size is used"]
    ds = read_coco(_coco(tmp_path, lambda d: d["images"][0].update(width=20, height=12)))
    assert (ds[0].width, ds[0].height) == (20, 12)


def test_image_folders_linked_to_another_disk_are_fine(tmp_path):
    """Linking the whole images/ (or JPEGImages/) folder elsewhere is the user's choice, not an escape."""
    store = tmp_path / "disk"
    _png(store / "yolo" / "a.png", 10, 20)
    (store / "labels").mkdir()
    (store / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    root = tmp_path / "y"
    root.mkdir()
    os.symlink(store / "yolo", root / "images")
    os.symlink(store / "labels", root / "labels")
    (root / "classes.txt").write_text("cat\n")
    assert read_yolo(root, None)[0].boxes.tolist() == [[5.0, 2.5, 15.0, 7.5]]
    voc = _voc(tmp_path / "voc")
    os.rename(voc / "JPEGImages", store / "jpeg")
    os.symlink(store / "jpeg", voc / "JPEGImages")
    assert read_voc(voc, "train")[0].path == str(store / "jpeg" / "img1.png")


@needs_fifo
def test_csv_given_a_fifo_refuses_it(tmp_path):
    os.mkfifo(tmp_path / "train.csv")
    assert "train.csv: the CSV file path is a FIFO (named pipe), not a regular file" in str(
        _finishes(read_csv, tmp_path / "train.csv"))


def _jpeg_with_exif(tiff_block, rows=12, cols=20):
    """A rows x cols JPEG whose first segment is an APP1 EXIF block holding ``tiff_block``."""
    import struct

    ok, buf = cv2.imencode(".jpg", np.full((rows, cols, 3), 128, np.uint8))
    body = b"Exif\x00\x00" + tiff_block
    return buf.tobytes()[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + buf.tobytes()[2:]


@pytest.mark.parametrize("order, magic, shown", [
    (b"MM", b"\x00*", (12, 20)),   # a valid EXIF block: orientation 6 turns the 20x12 image to 12x20 (w, h)
    (b"MM", b"\xb4*", (20, 12)),   # a damaged TIFF magic number: OpenCV reads no EXIF, the image stays as stored
    (b"M\x01", b"\x00*", (12, 20)),  # OpenCV tells the byte order by the first byte alone
])
def test_header_sizes_follow_opencv_on_damaged_exif_blocks(tmp_path, order, magic, shown):
    # found by benchmarks/fuzz.py (target "image"): the header size and the decoded image disagreed
    ifd = b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + b"\x00\x00\x00\x00"
    path = tmp_path / "x.jpg"
    path.write_bytes(_jpeg_with_exif(order + magic + b"\x00\x00\x00\x08" + ifd))
    img = read_image(path)
    assert image_size(path) == (img.shape[1], img.shape[0]) == shown


def test_tiff_sizes_are_those_of_the_decoded_image(tmp_path, monkeypatch):
    # libtiff's choice among directories and tag types cannot be followed from the header: TIFF is decoded
    import classic_loc.images as images

    path = tmp_path / "x.tif"
    ok, buf = cv2.imencode(".tif", np.zeros((12, 20, 3), np.uint8))
    path.write_bytes(buf.tobytes())
    decoded = []
    real = images.read_image
    monkeypatch.setattr(images, "read_image", lambda p: decoded.append(p) or real(p))
    assert images.image_size(path) == (20, 12) and decoded == [path]


def test_the_pixel_limit_check_of_a_png_reads_its_first_chunk_only(tmp_path):
    # read_image needs the pixel count, not the orientation: the PNG's other chunks are not walked
    from classic_loc._imageheader import read_header

    path = tmp_path / "x.png"
    ok, buf = cv2.imencode(".png", np.zeros((12, 20), np.uint8))
    path.write_bytes(buf.tobytes())
    with open(path, "rb") as fh:
        assert read_header(fh, orientation=False) == ("PNG", 20, 12, 1)
        assert fh.tell() == 8 + 8 + 8  # signature, IHDR length and type, width and height
    with open(path, "rb") as fh:
        assert read_header(fh) == ("PNG", 20, 12, 1) and fh.tell() > 24


def test_coco_read_without_images_gives_no_path_to_a_missing_image(tmp_path):
    # found by benchmarks/fuzz.py (target "coco"): a record pointed at a file that is not there
    from classic_loc.datasets import read_coco

    ok, buf = cv2.imencode(".png", np.zeros((16, 16), np.uint8))
    names = [f"{k}.png" for k in range(5)] + ["gone.png"]  # the image folder is found from the first five
    for name in names[:5]:
        (tmp_path / name).write_bytes(buf.tobytes())
    doc = {"images": [{"id": k + 1, "file_name": n, "width": 16, "height": 16} for k, n in enumerate(names)],
           "categories": [{"id": 1, "name": "cat"}], "annotations": []}
    (tmp_path / "gt.json").write_text(json.dumps(doc))
    ds = read_coco(tmp_path / "gt.json", require_images=False)
    assert [r.path for r in ds] == [str(tmp_path / n) for n in names[:5]] + [None]
    assert ds[5].file_name == "gone.png" and ds.match_image_id("gone.png") == 5
