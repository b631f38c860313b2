"""What a gallery run reads and writes: the input images under IN and the output name of each.

Symlink policy (one rule for files and folders): a symlink is followed only when it resolves to a place inside
IN; symlinked folders are never entered (that rules out loops and images read twice through two paths), and a
symlinked file whose target lies outside IN is skipped and reported. Nothing outside IN is ever read.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import GalleryError
from .wording import plural

READ_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Image formats met in the wild that we do not read: reported by name instead of silently ignored.
UNREAD_IMAGE_SUFFIXES = (".gif", ".heic", ".heif", ".avif", ".jp2", ".j2k", ".ppm", ".pgm", ".pbm", ".pnm",
                         ".ico", ".psd", ".raw", ".dng", ".cr2", ".nef", ".exr", ".hdr", ".svg", ".jxl")
NAME_POLICIES = ("stem", "keep-suffix")


def image_uid(relative_path: str) -> int:
    """A stable 63-bit uid from the image's path relative to IN (the same on every machine)."""
    digest = hashlib.sha256(relative_path.replace(os.sep, "/").encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def output_name(relative_path: str, policy: str = "stem", extension: str = ".png") -> str:
    """The output's path relative to OUT: the input's suffix replaced by ``extension`` (the storage format's:
    .png, .jpg, .webp) ("stem"), or it appended to the whole name ("keep-suffix": a.jpg -> a.jpg.png, so a.jpg
    and a.png never share an output)."""
    path = PurePosixPath(relative_path)
    return str(path.with_suffix(extension)) if policy == "stem" else f"{relative_path}{extension}"


@dataclass
class InputListing:
    """The images a run protects (sorted relative POSIX paths) and what it left out, with the reason."""

    images: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    ignored: int = 0  # other files (not images)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_folders(in_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """IN must be a folder; OUT may not be IN, lie inside IN, or contain IN. Returns both resolved."""
    if not in_dir.exists():
        raise GalleryError(f"input folder {in_dir} does not exist")
    if not in_dir.is_dir():
        raise GalleryError(f"input {in_dir} is not a folder; pass the folder that holds the images")
    in_real, out_real = in_dir.resolve(), out_dir.resolve()
    if out_real == in_real:
        raise GalleryError("the output folder must differ from the input folder (inputs would be overwritten)")
    if _inside(out_real, in_real):
        raise GalleryError(f"the output folder {out_dir} lies inside the input folder {in_dir}: a later run would "
                           f"protect its own outputs. Choose an output folder outside {in_dir}")
    if _inside(in_real, out_real):
        raise GalleryError(f"the input folder {in_dir} lies inside the output folder {out_dir}: outputs could "
                           f"overwrite inputs. Choose an output folder that does not contain the inputs")
    if out_real.exists() and not out_real.is_dir():
        raise GalleryError(f"output {out_dir} exists and is not a folder")
    return in_real, out_real


def find_inputs(in_dir: Path) -> InputListing:
    """Every readable image under ``in_dir`` (sorted), applying the symlink policy and reporting the rest."""
    root = Path(in_dir).resolve()
    listing = InputListing([])
    for folder, subfolders, files in os.walk(root, followlinks=False):
        here = Path(folder)
        for name in sorted(subfolders):
            if (here / name).is_symlink():
                listing.skipped.append(((here / name).relative_to(root).as_posix(),
                                        "symlinked folder (not followed)"))
        for name in files:
            path = here / name
            relative = path.relative_to(root).as_posix()
            suffix = path.suffix.lower()
            if suffix not in READ_SUFFIXES:
                if suffix in UNREAD_IMAGE_SUFFIXES:
                    listing.skipped.append((relative, f"{suffix} images are not read; convert to PNG or JPEG"))
                else:
                    listing.ignored += 1
                continue
            if path.is_symlink():
                target = Path(os.path.realpath(path))
                if not _inside(target, root):
                    listing.skipped.append((relative, "symlink to a file outside the input folder (not read)"))
                    continue
                if not target.is_file():
                    listing.skipped.append((relative, "broken symlink"))
                    continue
            listing.images.append(relative)
    listing.images.sort()
    listing.skipped.sort()
    return listing


def check_output_names(images: list[str], policy: str, extension: str = ".png") -> dict[str, str]:
    """{input: output} for every input; two inputs with one output are refused before any work."""
    outputs: dict[str, str] = {}
    by_output: dict[str, str] = {}
    clashes = []
    for relative in images:
        out = output_name(relative, policy, extension)
        if out in by_output:
            clashes.append((by_output[out], relative, out))
        by_output[out] = relative
        outputs[relative] = out
    if clashes:
        shown = "; ".join(f"{a} and {b} -> {o}" for a, b, o in clashes[:5])
        more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
        hint = (f"pass --keep-suffix to name outputs <name>.<ext>{extension}" if policy == "stem"
                else "rename the inputs")
        raise GalleryError(f"{plural(len(clashes), 'pair')} of inputs would write the same output: {shown}{more}; {hint}")
    return outputs
