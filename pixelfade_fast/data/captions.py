"""SynthPed captions: an identity's look (and one shot's view) in seeded natural-language phrasings.

Every caption names what a person wears (upper garment with its colour and pattern, lower garment), and
mentions, each with some probability, the hair, the build, the bag, the hat, the shoes, a belt, a chest logo
and whether the person faces the camera. Attributes are read back from the look: a colour's name is the
nearest entry of the palette it was drawn from (the look holds the colour jittered by ±3 %), the build is the
nearest body type. The camera's colour cast is not described: captions say what the person wears, not what a
camera shows.

Sidecar format: beside the images of each folder, ``captions.jsonl`` holds one JSON object per image, sorted
by file name: ``{"image": "<file name>", "pid": <int>, "camid": <0-based int>, "captions": ["...", ...]}``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .records import DatasetNotFoundError
from .synthped_looks import BODY_TYPES, CLOTH_PALETTE, HAIR_COLOURS, IdentityLook, Shot

CAPTIONS_FILE = "captions.jsonl"
CLOTH_NAMES = ("black", "white", "grey", "navy", "red", "blue", "green", "khaki", "brown", "yellow", "pink",
               "purple")
HAIR_NAMES = ("black", "dark brown", "brown", "blond", "grey")
BUILD_NAMES = ("", "slim", "broad-shouldered")  # BODY_TYPES rows: average (not mentioned), slim, broad

PERSONS = ("person", "pedestrian", "walker")
PATTERN_WORDS = {"plain": ("",), "hstripes": ("horizontally striped", "striped"),
                 "vstripes": ("vertically striped", "pinstriped"), "plaid": ("checked", "plaid")}
LONG_SLEEVES = ("long-sleeved top", "jacket", "sweater", "shirt")
SHORT_SLEEVES = ("t-shirt", "short-sleeved shirt", "short-sleeved top")
COATS = ("long coat", "coat")
LOWER_WORDS = {"trousers": ("trousers", "pants", "long trousers"), "shorts": ("shorts",),
               "skirt": ("skirt", "knee-length skirt")}
WEAR_VERBS = ("wearing", "dressed in", "in")
OPENINGS = ("a {build}{person} {wear} {upper} and {lower}", "the {build}{person} is {wear2} {upper} and {lower}",
            "this {build}{person} wears {upper} with {lower}")
WEAR2_VERBS = ("wearing", "dressed in")
BAG_PHRASES = {"shoulder": ("carries a {colour} shoulder bag", "has a {colour} bag over one shoulder"),
               "backpack": ("carries a {colour} backpack", "has a {colour} backpack on the back")}
HAIR_PHRASES = ("has {length} {colour} hair{fringe}", "with {length} {colour} hair{fringe}")
FRINGE = (" and a fringe", " with bangs")
EXTRAS = {"hat": ("wears a {colour} hat", "has a {colour} cap on"), "belt": ("wears a {colour} belt",),
          "logo": ("has a small {colour} logo on the chest",), "shoes": ("wears {colour} shoes",)}
VIEWS = {False: ("facing the camera", "seen from the front"),
         True: ("seen from behind", "walking away from the camera")}
SUBJECTS = ("the person", "this pedestrian", "the walker")
# Probability that each optional attribute is mentioned in one caption.
MENTION_P = {"hair": 0.8, "bag": 0.9, "hat": 0.9, "belt": 0.6, "logo": 0.6, "shoes": 0.5, "view": 0.5}

_WORD = re.compile(r"[a-z]+")


def _nearest(colour: np.ndarray, table: np.ndarray) -> int:
    return int(np.argmin(np.square(table - np.asarray(colour)[None, :]).sum(1)))


def cloth_name(colour: np.ndarray) -> str:
    """The palette name of a (jittered) clothing colour."""
    return CLOTH_NAMES[_nearest(colour, CLOTH_PALETTE)]


def attributes(look: IdentityLook) -> dict:
    """What a caption can say about a look: names of colours, garments, pattern, hair, build and extras."""
    body = _nearest(np.array([look.shoulder_hw, look.head_ry]), BODY_TYPES[:, [3, 0]])
    return {
        "upper": cloth_name(look.upper), "upper_second": cloth_name(look.upper_second), "pattern": look.pattern,
        "sleeves": "coat" if look.coat_extra > 0 else ("short" if look.short_sleeves else "long"),
        "lower": cloth_name(look.lower), "lower_kind": look.lower_kind,
        "hair": HAIR_NAMES[_nearest(look.hair, HAIR_COLOURS)], "hair_long": look.hair_length > 0,
        "fringe": look.hair_fringe > 0, "build": BUILD_NAMES[body],
        "bag": look.bag_kind, "bag_colour": cloth_name(look.bag),
        "hat": None if look.hat is None else cloth_name(look.hat),
        "belt": None if look.belt is None else cloth_name(look.belt),
        "logo": None if look.logo is None else cloth_name(look.logo),
        "shoes": cloth_name(look.shoes),
    }


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _upper_phrase(attrs: dict, rng: np.random.Generator) -> str:
    garments = {"coat": COATS, "short": SHORT_SLEEVES, "long": LONG_SLEEVES}[attrs["sleeves"]]
    garment = _pick(rng, garments)
    pattern = _pick(rng, PATTERN_WORDS[attrs["pattern"]])
    if not pattern:
        return f"a {attrs['upper']} {garment}"
    second = attrs["upper_second"]
    colours = attrs["upper"] if second == attrs["upper"] else f"{attrs['upper']} and {second}"
    return f"a {pattern} {colours} {garment}"


def _lower_phrase(attrs: dict, rng: np.random.Generator) -> str:
    word = _pick(rng, LOWER_WORDS[attrs["lower_kind"]])
    article = "a " if attrs["lower_kind"] == "skirt" else ""
    return f"{article}{attrs['lower']} {word}"


def _caption(attrs: dict, back_view: bool, rng: np.random.Generator) -> str:
    opening = _pick(rng, OPENINGS).format(
        build=f"{attrs['build']} " if attrs["build"] and rng.random() < 0.7 else "", person=_pick(rng, PERSONS),
        wear=_pick(rng, WEAR_VERBS), wear2=_pick(rng, WEAR2_VERBS), upper=_upper_phrase(attrs, rng),
        lower=_lower_phrase(attrs, rng))
    clauses = []
    if rng.random() < MENTION_P["hair"]:
        clauses.append(_pick(rng, HAIR_PHRASES).format(
            length="long" if attrs["hair_long"] else "short", colour=attrs["hair"],
            fringe=_pick(rng, FRINGE) if attrs["fringe"] else ""))
    if attrs["bag"] != "none" and rng.random() < MENTION_P["bag"]:
        clauses.append(_pick(rng, BAG_PHRASES[attrs["bag"]]).format(colour=attrs["bag_colour"]))
    for extra in ("hat", "belt", "logo", "shoes"):
        if attrs[extra] is not None and rng.random() < MENTION_P[extra]:
            clauses.append(_pick(rng, EXTRAS[extra]).format(colour=attrs[extra]))
    if rng.random() < MENTION_P["view"]:
        clauses.append("is " + _pick(rng, VIEWS[back_view]))
    rng.shuffle(clauses)
    sentences = [opening]
    for clause in clauses:  # "with ..." continues the sentence before it, the rest starts a new one
        if clause.startswith("with "):
            sentences[-1] += " " + clause
        else:
            sentences.append(f"{_pick(rng, SUBJECTS)} {clause}")
    return " ".join(s[0].upper() + s[1:] + "." for s in sentences)


def describe(look: IdentityLook, shot: Shot, rng: np.random.Generator, count: int) -> list[str]:
    """``count`` captions of one image (its look, and its shot's view), phrased by draws from ``rng``."""
    attrs = attributes(look)
    return [_caption(attrs, shot.back_view, rng) for _ in range(count)]


def tokenize_words(text: str) -> list[str]:
    """Lower-case words of a caption (letters only: punctuation and hyphens separate words)."""
    return _WORD.findall(text.lower())


def caption_vocabulary() -> list[str]:
    """Every word a SynthPed caption can hold, sorted (taken from the phrase tables above)."""
    tables = [CLOTH_NAMES, HAIR_NAMES, BUILD_NAMES, PERSONS, LONG_SLEEVES, SHORT_SLEEVES, COATS, WEAR_VERBS,
              WEAR2_VERBS, OPENINGS, HAIR_PHRASES, FRINGE, SUBJECTS, ("long short and is a",),
              *PATTERN_WORDS.values(), *LOWER_WORDS.values(), *BAG_PHRASES.values(), *EXTRAS.values(),
              *VIEWS.values()]
    words = {w for table in tables for phrase in table for w in tokenize_words(re.sub(r"\{\w+\}", " ", phrase))}
    return sorted(words)


def write_captions(folder: str | Path, entries: list[tuple[str, int, int, list[str]]]) -> Path:
    """Write ``folder/captions.jsonl`` from (file name, pid, camid, captions) entries, sorted by file name."""
    path = Path(folder) / CAPTIONS_FILE
    lines = [json.dumps({"image": name, "pid": pid, "camid": camid, "captions": captions})
             for name, pid, camid, captions in sorted(entries)]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def read_captions(folder: str | Path) -> dict[str, list[str]]:
    """The captions of ``folder``'s images, keyed by image path (``str(folder / name)``, as the readers' records)."""
    folder = Path(folder)
    path = folder / CAPTIONS_FILE
    if not path.is_file():
        raise DatasetNotFoundError(f"no {CAPTIONS_FILE} in {str(folder)!r}: generate the data with captions "
                                   f"(generate_synthped(..., captions_per_image=2))")
    captions = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            entry = json.loads(line)
            captions[str(folder / entry["image"])] = [str(c) for c in entry["captions"]]
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a caption line {{\"image\", \"pid\", \"camid\", \"captions\"}}: "
                             f"{error}") from error
    return captions
