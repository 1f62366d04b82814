import logging
import shutil

import pytest
from PIL import Image

from coop.data.caltech101 import check_image, find_image_root, list_classes, load_image, prompt_name
from coop.utils.errors import UserError
from coop.data.split import make_split


def test_discovery_leaves_out_ignored_folders_and_renames(synthetic_root):
    classes = list_classes(synthetic_root)
    folders = [c.folder for c in classes]
    assert "BACKGROUND_Google" not in folders and "Faces_easy" not in folders
    assert folders == sorted(folders)  # labels follow the sorted folder order
    assert [c.label for c in classes] == list(range(len(classes)))
    names = {c.folder: c.classname for c in classes}
    assert names["Faces"] == "face" and names["airplanes"] == "airplane"
    assert names["Leopards"] == "leopard" and names["Motorbikes"] == "motorbike"
    assert names["car_side"] == "car_side"  # CoOp keeps underscores in the class name ...
    assert prompt_name(names["car_side"]) == "car side"  # ... and reads them as spaces in prompts


def test_data_root_may_be_the_image_folder_or_above_it(synthetic_root, tmp_path):
    image_root = tmp_path / "data" / "caltech-101" / "101_ObjectCategories"
    shutil.copytree(synthetic_root, image_root)
    for data_root in (image_root, tmp_path / "data" / "caltech-101", tmp_path / "data"):
        assert find_image_root(data_root) == image_root
    shutil.copytree(synthetic_root, tmp_path / "data" / "other" / "101_ObjectCategories")
    with pytest.raises(UserError, match="several"):
        find_image_root(tmp_path / "data")


@pytest.mark.parametrize("case", ["missing", "empty", "no_image_dir", "file"])
def test_bad_data_root_is_a_clear_error(tmp_path, case):
    root = tmp_path / "data"
    if case == "empty":
        (root / "101_ObjectCategories").mkdir(parents=True)
    elif case == "no_image_dir":
        (root / "something_else").mkdir(parents=True)
    elif case == "file":
        root.write_text("not a folder")
    with pytest.raises(UserError) as e:
        find_image_root(root)
    assert str(root) in str(e.value) and "101_ObjectCategories" in str(e.value)


def test_grayscale_images_load_as_rgb(synthetic_root):
    path = synthetic_root / "Faces" / "image_0001.jpg"
    assert Image.open(path).mode == "L"
    assert load_image(path).mode == "RGB"


def test_truncated_image_is_named_and_left_out_of_the_split(synthetic_root, tmp_path, caplog):
    root = tmp_path / "101_ObjectCategories"
    shutil.copytree(synthetic_root, root)
    bad = root / "anchor" / "image_0003.jpg"
    bad.write_bytes(bad.read_bytes()[:300])  # a truncated download
    (root / "anchor" / "image_0004.jpg").write_bytes(b"not a jpeg at all")
    assert check_image(bad) is not None
    with caplog.at_level(logging.WARNING):
        split = make_split(root)
    listed = {rel for part in split.values() for rel, _, _ in part}
    assert "anchor/image_0003.jpg" not in listed and "anchor/image_0004.jpg" not in listed
    assert "anchor/image_0005.jpg" in listed
    assert "image_0003.jpg" in caplog.text and "image_0004.jpg" in caplog.text


@pytest.mark.parametrize("mode,bits", [("I;16", 16), ("I", 31)])
def test_high_bit_depth_images_are_scaled_not_clipped_to_white(tmp_path, mode, bits):
    import numpy as np
    from PIL import Image

    from coop.data.caltech101 import load_image

    top = 2 ** bits - 1
    ramp = (np.linspace(0, top, 64).reshape(8, 8)).astype(np.uint16 if mode == "I;16" else np.int32)
    path = tmp_path / ("deep.png" if mode == "I;16" else "deep.tif")  # a 16-bit PNG; a 32-bit integer TIFF
    Image.fromarray(ramp).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")
    rgb = np.asarray(load_image(path))
    assert rgb.shape == (8, 8, 3) and rgb[..., 0].min() == 0 and rgb[..., 0].max() == 255
    assert len(np.unique(rgb[..., 0])) > 32  # a ramp, not black and white


def test_a_16_bit_image_is_scaled_by_its_type_not_its_content(tmp_path):
    """One bright pixel must not change the rest of the image (scaling by the maximum did)."""
    import numpy as np
    from PIL import Image

    from coop.data.caltech101 import load_image

    dim = np.full((8, 8), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    bright = dim.copy()
    bright[0, 0] = 65535
    for name, arr in (("dim.png", dim), ("bright.png", bright)):
        Image.fromarray(arr).save(tmp_path / name)
    a, b = np.asarray(load_image(tmp_path / "dim.png")), np.asarray(load_image(tmp_path / "bright.png"))
    assert a[0, 0, 0] == 128 and b[0, 0, 0] == 255
    assert np.array_equal(a[1:], b[1:]) and np.array_equal(a[0, 1:], b[0, 1:])
