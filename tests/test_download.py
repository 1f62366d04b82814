"""scripts/download_caltech101.py and coop.data.download against a local HTTP server (no network needed).

The served archive is shaped like the official one: caltech-101.zip holding
caltech-101/101_ObjectCategories.tar.gz (the images), Annotations.tar, show_annotation.m and a
__MACOSX folder, with a tiny synthetic image tree inside the tar.gz.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from coop.data.caltech101 import IMAGE_DIR, find_image_root, list_classes, list_images
from coop.data.download import EXTRACT_PREFIX, download, extract, fetch_caltech101
from coop.utils.errors import EXIT_USER_ERROR, UserError
from coop.data.synthetic import make_synthetic_data

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["Faces", "accordion", "anchor"]


def _load_script():
    spec = importlib.util.spec_from_file_location("scripts_download_caltech101", ROOT / "scripts" / "download_caltech101.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _load_script()


def _digests(path: Path):
    data = path.read_bytes()
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()


def _tar_bytes(members: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """An official-shaped caltech-101.zip and its MD5/SHA256; also the inner tar.gz."""
    base = tmp_path_factory.mktemp("official")
    make_synthetic_data(base / "src", classes=tuple(CLASSES), per_class=4)
    inner = base / f"{IMAGE_DIR}.tar.gz"
    with tarfile.open(inner, "w:gz") as tf:
        tf.add(base / "src" / IMAGE_DIR, arcname=IMAGE_DIR)
    served = base / "served"
    served.mkdir()
    zip_path = served / "caltech-101.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.write(inner, f"caltech-101/{IMAGE_DIR}.tar.gz")
        zf.writestr("caltech-101/Annotations.tar", _tar_bytes({"Annotations/Faces_2/annotation_0001.mat": b"x"}))
        zf.writestr("caltech-101/show_annotation.m", "% show an annotation\n")
        zf.writestr(f"__MACOSX/caltech-101/._{IMAGE_DIR}.tar.gz", b"\0\5\26\7 resource fork")
    md5, sha256 = _digests(zip_path)
    return {"zip": zip_path, "md5": md5, "sha256": sha256, "inner": inner, "inner_md5": _digests(inner)[0]}


class _Server:
    def __init__(self, directory: Path):
        self.requests: list = []
        requests = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(directory)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def server(archive, request):
    s = _Server(archive["zip"].parent)
    request.addfinalizer(s.close)
    return s


@pytest.fixture
def requests(server):
    server.requests.clear()
    return server.requests


def _all_files(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _check_tree(out: Path):
    root = find_image_root(out)
    assert root == out / IMAGE_DIR  # the zip's caltech-101/ level is dropped, as data/README.md documents
    assert [c.folder for c in list_classes(root)] == CLASSES
    for c in CLASSES:
        assert len(list_images(root, c)) == 4
    return root


# ------------------------------------------------------------------ (a) download, then nothing to do

def test_download_extract_then_skip(server, requests, archive, tmp_path, capsys):
    out = tmp_path / "out"
    url = f"{server.url}/caltech-101.zip"
    argv = ["--url", url, "--md5", archive["md5"], "--sha256", archive["sha256"], "--out", str(out)]
    assert script.main(argv) == 0
    assert requests == ["/caltech-101.zip"]
    _check_tree(out)
    # the zip and the inner tar.gz are gone, the small extras stay, no temporaries, no __MACOSX
    assert sorted(p.name for p in out.iterdir()) == ["101_ObjectCategories", "Annotations.tar", "show_annotation.m"]
    err = capsys.readouterr().err
    assert f"data ready: pass --data-root {out}" in err
    assert archive["md5"] in err and archive["sha256"] in err  # the checked digests are logged

    assert script.main(argv) == 0
    assert requests == ["/caltech-101.zip"]  # no second request
    assert "nothing to download" in capsys.readouterr().err
    _check_tree(out)


def test_keep_archive_keeps_the_zip(server, requests, archive, tmp_path):
    out = tmp_path / "out"
    assert script.main(["--url", f"{server.url}/caltech-101.zip", "--md5", archive["md5"], "--out", str(out),
                        "--keep-archive"]) == 0
    _check_tree(out)
    assert _digests(out / "caltech-101.zip")[0] == archive["md5"]
    assert (out / f"{IMAGE_DIR}.tar.gz").is_file()


def test_default_md5_is_the_official_one(server, archive, tmp_path, capsys):
    """Without --md5 the official zip's MD5 is enforced, so the (different) test zip is refused."""
    out = tmp_path / "out"
    assert script.main(["--url", f"{server.url}/caltech-101.zip", "--out", str(out)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "3138e1922a9193bfa496528edbbc45d0" in err and archive["md5"] in err
    # ... and --md5 '' skips verification
    assert script.main(["--url", f"{server.url}/caltech-101.zip", "--out", str(out), "--md5", ""]) == 0
    _check_tree(out)


# ------------------------------------------------------------------ (b) checksum mismatch

@pytest.mark.parametrize("flag,kind", [("--md5", "MD5"), ("--sha256", "SHA256")])
def test_wrong_checksum_leaves_nothing(server, requests, archive, tmp_path, capsys, flag, kind):
    out = tmp_path / "out"
    wrong = "0" * (32 if kind == "MD5" else 64)
    rc = script.main(["--url", f"{server.url}/caltech-101.zip", flag, wrong, "--out", str(out)]
                     + (["--md5", ""] if kind == "SHA256" else []))
    assert rc == EXIT_USER_ERROR
    assert requests == ["/caltech-101.zip"]  # it did download, and refused the result
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and kind in err
    assert wrong in err and archive["md5" if kind == "MD5" else "sha256"] in err  # expected and got
    assert "Traceback" not in err
    assert _all_files(out) == []  # no half file, no extracted tree


def test_malformed_checksum_is_a_user_error(tmp_path, capsys):
    assert script.main(["--url", "http://127.0.0.1:1/x.zip", "--md5", "abc", "--out", str(tmp_path / "o")]) == 2
    assert "--md5 'abc' is not a MD5 checksum" in capsys.readouterr().err


# ------------------------------------------------------------------ (c) network failures

def test_unreachable_url_says_what_to_do(tmp_path, capsys):
    out = tmp_path / "out"
    url = "http://127.0.0.1:1/x.zip"
    assert script.main(["--url", url, "--out", str(out), "--timeout", "5"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "error: could not download http://127.0.0.1:1/x.zip" in err
    assert "--archive FILE" in err and f"download {url} by hand" in err
    assert "Traceback" not in err
    assert _all_files(out) == []


def test_http_404_is_reported(server, tmp_path, capsys):
    out = tmp_path / "out"
    assert script.main(["--url", f"{server.url}/missing.zip", "--out", str(out)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "--archive FILE" in err
    assert _all_files(out) == []


def test_download_removes_temp_on_mismatch(server, archive, tmp_path):
    dest = tmp_path / "d" / "caltech-101.zip"
    with pytest.raises(UserError, match="checksum mismatch"):
        download(f"{server.url}/caltech-101.zip", dest, expected_md5="f" * 32)
    assert _all_files(dest.parent) == []
    assert download(f"{server.url}/caltech-101.zip", dest, expected_md5=archive["md5"]) == dest
    assert _digests(dest)[0] == archive["md5"]
    assert _all_files(dest.parent) == ["caltech-101.zip"]


# ------------------------------------------------------------------ (d) file:// URL and --archive

def test_file_url(archive, tmp_path):
    out = tmp_path / "out"
    assert script.main(["--url", archive["zip"].as_uri(), "--md5", archive["md5"], "--out", str(out)]) == 0
    _check_tree(out)
    assert archive["zip"].is_file()  # the source is untouched


def test_local_archive(server, requests, archive, tmp_path, capsys):
    out = tmp_path / "out"
    assert script.main(["--archive", str(archive["zip"]), "--md5", archive["md5"], "--out", str(out)]) == 0
    assert requests == []
    _check_tree(out)
    assert archive["zip"].is_file()  # a user's archive is never deleted
    assert not (out / "caltech-101.zip").exists()
    capsys.readouterr()

    bad = tmp_path / "bad"
    assert script.main(["--archive", str(archive["zip"]), "--md5", "1" * 32, "--out", str(bad)]) == EXIT_USER_ERROR
    assert "checksum mismatch" in capsys.readouterr().err
    assert archive["zip"].is_file() and _all_files(bad) == []


def test_inner_tar_gz_as_archive(archive, tmp_path):
    out = tmp_path / "out"
    assert script.main(["--archive", str(archive["inner"]), "--md5", archive["inner_md5"], "--out", str(out)]) == 0
    _check_tree(out)


def test_inner_tar_gz_default_checksum_is_its_own(archive, tmp_path, capsys):
    """Passed alone, 101_ObjectCategories.tar.gz is checked against that file's known MD5, not the zip's."""
    out = tmp_path / "out"
    assert script.main(["--archive", str(archive["inner"]), "--out", str(out)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "b224c7392d521a49829488ab0f1120d9" in err and archive["inner_md5"] in err
    assert _all_files(out) == []


def test_missing_archive_file(tmp_path, capsys):
    assert script.main(["--archive", str(tmp_path / "nope.zip"), "--out", str(tmp_path / "o")]) == EXIT_USER_ERROR
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------ (e) unsafe or damaged archives

@pytest.mark.parametrize("member", ["../evil", "caltech-101/../../evil", "/tmp/coop-test-evil-abs"])
def test_tar_path_traversal_is_refused(tmp_path, member):
    bad = tmp_path / "evil.tar"
    bad.write_bytes(_tar_bytes({"101_ObjectCategories/a/image_0001.jpg": b"jpg", member: b"pwned"}))
    dest = tmp_path / "a" / "b"
    with pytest.raises(UserError, match="refusing to extract"):
        extract(bad, dest)
    assert not (tmp_path / "a" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not Path("/tmp/coop-test-evil-abs").exists()
    assert _all_files(dest) == []  # the temporary folder is gone too


@pytest.mark.parametrize("member", ["../evil", "/abs-evil"])
def test_zip_path_traversal_is_refused(tmp_path, member):
    bad = tmp_path / "evil.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("caltech-101/x.txt", "ok")
        zf.writestr(member, "pwned")
    dest = tmp_path / "a" / "b"
    with pytest.raises(UserError, match="refusing to extract"):
        extract(bad, dest)
    assert not (tmp_path / "a" / "evil").exists()
    assert _all_files(dest) == []


def test_tar_link_outside_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("101_ObjectCategories/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../etc/passwd"
        tf.addfile(info)
    bad = tmp_path / "link.tar"
    bad.write_bytes(buf.getvalue())
    with pytest.raises(UserError, match="outside the output folder"):
        extract(bad, tmp_path / "d")


def test_cli_refuses_traversal(tmp_path, capsys):
    bad = tmp_path / "evil.tar"
    bad.write_bytes(_tar_bytes({"../evil": b"pwned"}))
    assert script.main(["--archive", str(bad), "--md5", "", "--out", str(tmp_path / "out")]) == EXIT_USER_ERROR
    assert "path traversal" in capsys.readouterr().err
    assert not (tmp_path / "evil").exists()


def test_damaged_inner_archive_leaves_no_tree(archive, tmp_path):
    """Extraction fails half-way: nothing that looks like an image folder may remain."""
    data = archive["inner"].read_bytes()
    zip_path = tmp_path / "caltech-101.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr(f"caltech-101/{IMAGE_DIR}.tar.gz", data[: len(data) // 2])  # truncated
    out = tmp_path / "out"
    with pytest.raises(UserError, match="damaged"):
        extract(zip_path, out)
    assert _all_files(out) == []
    with pytest.raises(UserError):
        find_image_root(out)


def test_not_an_archive(tmp_path):
    f = tmp_path / "page.html"
    f.write_text("<html>rate limited</html>")
    with pytest.raises(UserError, match="not a zip or tar"):
        extract(f, tmp_path / "out")


def test_archive_without_images(tmp_path):
    zip_path = tmp_path / "other.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("something/readme.txt", "hi")
    with pytest.raises(UserError, match="does not hold a 101_ObjectCategories"):
        extract(zip_path, tmp_path / "out")
    assert _all_files(tmp_path / "out") == []


# ------------------------------------------------------------------ leftovers, existing data, --help

def test_leftover_of_a_killed_run_is_not_taken_for_data(server, requests, archive, tmp_path):
    out = tmp_path / "out"
    half = out / f"{EXTRACT_PREFIX}killed" / "caltech-101" / IMAGE_DIR / "accordion"
    half.mkdir(parents=True)
    (half / "image_0001.jpg").write_bytes(b"half")
    (out / ".caltech-101.zip.abc.partial-download").write_bytes(b"half")
    image_root = fetch_caltech101(out, url=f"{server.url}/caltech-101.zip", md5=archive["md5"])
    assert requests == ["/caltech-101.zip"]
    assert image_root == _check_tree(out)
    assert not any(p.name.startswith(".") for p in out.iterdir())


def test_existing_data_is_used_without_network(tmp_path, capsys):
    out = tmp_path / "data"
    make_synthetic_data(out / "caltech-101", classes=("accordion", "anchor"), per_class=2)
    # an unreachable URL: if it tried to download, this would fail
    assert script.main(["--url", "http://127.0.0.1:1/x.zip", "--out", str(out)]) == 0
    assert "nothing to download" in capsys.readouterr().err


def test_conflicting_partial_folder_is_reported(archive, tmp_path):
    out = tmp_path / "out"
    (out / IMAGE_DIR).mkdir(parents=True)  # an empty, broken image folder from a manual attempt
    with pytest.raises(UserError, match="already exists"):
        fetch_caltech101(out, archive=archive["zip"], md5=archive["md5"])
    assert sorted(p.name for p in out.iterdir()) == [IMAGE_DIR]
    assert list((out / IMAGE_DIR).iterdir()) == []


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        script.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--out", "--url", "--archive", "--md5", "--sha256", "--keep-archive"):
        assert flag in out
