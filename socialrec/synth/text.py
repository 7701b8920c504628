"""Vocabulary and templates for the synthetic platform's human-readable text.

Kept apart from the generator so the word lists (which are long but boring) do not hide its logic.
Every clean string built here obeys the cleaning rules on purpose: single spaces, no leading or trailing
whitespace, no HTML, no ``&``/``<``/``>`` (so an entity decoder changes nothing), and no ``Ã``/``Â``.
The non-ASCII words use only lower-case letters U+00E1..U+00FF whose UTF-8 second byte is >= 0xA0, so
their Latin-1 mis-decoding (``mojibake``) is printable and its repair is unambiguous. ``à`` (second byte
0xA0, which mis-decodes to a no-break space that whitespace collapsing would destroy) and ``ß`` are
left out.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

# Leaf categories. "Music" is the media-like category whose items get ``play`` events; it sits at a
# low index so every configuration (categories >= 2) has it.
CATEGORY_NAMES: tuple[str, ...] = (
    "Books", "Music", "Electronics", "Kitchen", "Garden", "Toys", "Fashion", "Shoes", "Beauty", "Sports",
    "Outdoor", "Automotive", "Pet Supplies", "Office", "Games", "Movies", "Health", "Jewelry", "Baby",
    "Tools", "Furniture", "Grocery", "Art Supplies", "Travel", "Photography", "Computers", "Phones",
    "Watches", "Bags", "Stationery",
)
MEDIA_CATEGORY = "Music"

NOUNS: dict[str, tuple[str, ...]] = {
    "Books": ("Novel", "Cookbook", "Atlas", "Biography", "Anthology", "Handbook", "Memoir", "Guide"),
    "Music": ("Album", "Vinyl", "Single", "Box Set", "Live Recording", "Soundtrack", "Mixtape", "EP"),
    "Electronics": ("Speaker", "Headphones", "Charger", "Power Bank", "Smart Plug", "Radio", "Projector"),
    "Kitchen": ("Kettle", "Skillet", "Blender", "Knife Set", "Toaster", "Coffee Grinder", "Teapot"),
    "Garden": ("Planter", "Hose", "Pruner", "Seed Kit", "Lantern", "Bird Feeder", "Watering Can"),
    "Toys": ("Puzzle", "Robot", "Plush Bear", "Train Set", "Kite", "Building Blocks", "Yo-Yo"),
    "Fashion": ("Jacket", "Scarf", "Sweater", "Dress", "Hoodie", "Cardigan", "Shirt", "Coat"),
    "Shoes": ("Sneakers", "Boots", "Sandals", "Loafers", "Trail Runners", "Slippers"),
    "Beauty": ("Serum", "Face Cream", "Lip Balm", "Shampoo", "Perfume", "Hand Lotion"),
    "Sports": ("Yoga Mat", "Dumbbell Set", "Racket", "Football", "Jump Rope", "Water Bottle"),
    "Outdoor": ("Tent", "Backpack", "Sleeping Bag", "Headlamp", "Camping Stove", "Hammock"),
    "Movies": ("Blu-ray", "DVD Box", "Director's Cut", "Film Collection", "Documentary"),
}
GENERIC_NOUNS: tuple[str, ...] = (
    "Organizer", "Starter Kit", "Set", "Case", "Holder", "Stand", "Bundle", "Collection", "Tray", "Pouch",
)
ADJECTIVES: tuple[str, ...] = (
    "Classic", "Compact", "Deluxe", "Essential", "Urban", "Vintage", "Modern", "Premium", "Rugged", "Smart",
    "Eco", "Nordic", "Silent", "Bright", "Everyday", "Heritage", "Studio", "Travel", "Pocket", "Grand",
    "Golden", "Midnight", "Coastal", "Alpine", "Velvet", "Royal", "Swift", "Lunar", "Solar", "Pure",
)
# Legitimate non-ASCII words (lower-case accented letters only, see module docstring).
NON_ASCII_WORDS: tuple[str, ...] = (
    "Crème", "Café", "Brûlée", "Jalapeño", "Piñata", "Façade", "Smørrebrød", "Fjäll", "Köln", "Zürich",
    "Señorita", "Niño", "Mañana", "Touché", "Rosé", "Soirée", "Naïve", "São", "Göteborg", "Tromsø",
)
SUFFIXES: tuple[str, ...] = ("", "", "", "", "Pro", "Mini", "Plus", "XL", "2-Pack", "Set of 3", "Edition")
_SYLLABLES_A: tuple[str, ...] = (
    "Nor", "Lu", "Ka", "Zen", "Vel", "Or", "Bri", "Mar", "Tal", "Sol", "Kor", "Ame", "Fen", "Ri", "Do",
    "Sa", "Te", "Vik", "Ul", "Hal",
)
_SYLLABLES_B: tuple[str, ...] = (
    "vik", "mena", "to", "tra", "ora", "dal", "ix", "ana", "berg", "lux", "ton", "nova", "ella", "ko",
    "mar", "sen", "ris", "lo", "vo", "ent",
)
MATERIALS: tuple[str, ...] = (
    "recycled aluminium", "organic cotton", "stainless steel", "bamboo", "tempered glass", "oak wood",
    "soft silicone", "ceramic", "merino wool", "durable nylon",
)
BENEFITS: tuple[str, ...] = (
    "everyday use", "small apartments", "weekend trips", "gift giving", "busy mornings", "long evenings",
    "first-time buyers", "seasoned enthusiasts",
)
COUNTRIES: tuple[str, ...] = ("DE", "FR", "ES", "IT", "NL", "GB", "US", "PL", "SE", "PT", "AT", "BE", "DK", "IE")
COUNTRY_WEIGHTS: tuple[float, ...] = (18, 14, 11, 10, 7, 9, 8, 6, 4, 3, 3, 3, 2, 2)
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_WEIGHTS: tuple[float, ...] = (16, 30, 24, 15, 9, 6)
CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP")
CURRENCY_WEIGHTS: tuple[float, ...] = (80, 15, 5)

_REVIEW_OPENERS: dict[int, tuple[str, ...]] = {
    1: ("Very disappointed with the {name}.", "Would not buy the {name} again.", "The {name} broke quickly."),
    2: ("The {name} is below expectations.", "Not great, the {name} feels cheap.", "Mixed feelings about the {name}."),
    3: ("The {name} is okay for the price.", "Decent {noun}, nothing special.", "The {name} does the job."),
    4: ("Really happy with the {name}.", "Good {noun} from {brand}.", "The {name} works well."),
    5: ("Absolutely love the {name}!", "Best {noun} I have owned.", "The {name} exceeded my expectations."),
}
_REVIEW_MIDDLES: tuple[str, ...] = (
    "Delivery took {days} days.", "The packaging was fine.", "It matches the description.",
    "Quality is consistent with other {brand} products.", "I use it almost every day.",
    "My partner uses it too.", "Setup took a few minutes.", "The colour is slightly different from the photos.",
)
_REVIEW_CLOSERS: dict[int, tuple[str, ...]] = {
    1: ("Returned it.", "Avoid.", "One star is generous."),
    2: ("Probably not again.", "Look elsewhere.", "Meh."),
    3: ("Fair value.", "It is fine.", "Average overall."),
    4: ("Recommended.", "Would buy again.", "Good value."),
    5: ("Highly recommended!", "Five stars.", "Buy it."),
}

# Characters whose UTF-8 encoding mis-decodes as Latin-1 into a clean two-character sequence.
MOJIBAKE_LETTERS = frozenset("áâãäåæçèéêëìíîïñòóôõöøùúûüýþÿ")


def category_names(n: int) -> list[str]:
    """``n`` distinct leaf category names; beyond the base list they get a numeric suffix."""
    base = list(CATEGORY_NAMES)
    return [base[k] if k < len(base) else f"{base[k % len(base)]} {k // len(base) + 1}" for k in range(n)]


def nouns_for(category: str) -> tuple[str, ...]:
    """The product nouns of a category (numbered copies of a base category share its nouns)."""
    return NOUNS.get(category.rsplit(" ", 1)[0] if category[-1].isdigit() else category, GENERIC_NOUNS)


def brand_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct brand names built from syllables, so brands stay distinguishable in the catalogue."""
    a = rng.integers(len(_SYLLABLES_A), size=n)
    b = rng.integers(len(_SYLLABLES_B), size=n)
    seen: set[str] = set()
    out: list[str] = []
    for k in range(n):
        name = _SYLLABLES_A[int(a[k])] + _SYLLABLES_B[int(b[k])]
        step = 0
        while name in seen:  # lengthen with a third syllable until unique
            name = _SYLLABLES_A[int(a[k])] + _SYLLABLES_B[(int(b[k]) + step) % len(_SYLLABLES_B)] + _SYLLABLES_B[
                (k + step) % len(_SYLLABLES_B)
            ]
            step += 1
            if step > 4 * len(_SYLLABLES_B):
                name = f"{name}{k}"
        seen.add(name)
        out.append(name)
    return out


def make_title(brand: str, adjective: str, noun: str, suffix: str) -> str:
    """``<Brand> <Adjective> <Noun> [Suffix]``."""
    return f"{brand} {adjective} {noun} {suffix}" if suffix else f"{brand} {adjective} {noun}"


def make_description(title: str, noun: str, brand: str, r: Sequence[int]) -> str:
    """Two to four plain sentences about the item; ``r`` holds six non-negative random ints.

    Taking pre-drawn ints (not a generator) lets the caller draw them for all items in one vectorised call.
    """
    extra = (
        f"Made by {brand} from {MATERIALS[r[3] % len(MATERIALS)]}.",
        f"Ships within {2 + r[4] % 5} working days.",
        f"Backed by a {1 + r[5] % 3} year warranty.",
        "Easy to clean and built to last.",
    )
    parts = [f"The {title} is a well made {noun.lower()} for {BENEFITS[r[0] % len(BENEFITS)]}."]
    first = r[2] % len(extra)
    parts.extend(extra[(first + k) % len(extra)] for k in range(1 + r[1] % 3))
    return " ".join(parts)


def make_review(rating: int, title: str, noun: str, brand: str, r: Sequence[int]) -> str:
    """A short review whose tone follows ``rating`` (1-5) and which names the item; ``r``: six random ints."""
    name = title if r[0] % 2 == 0 else f"{brand} {noun.lower()}"
    fill = {"name": name, "noun": noun.lower(), "brand": brand, "days": 2 + r[5] % 8}
    first = r[3] % len(_REVIEW_MIDDLES)
    middles = [_REVIEW_MIDDLES[(first + k) % len(_REVIEW_MIDDLES)] for k in range(r[2] % 3)]
    sentences = [_REVIEW_OPENERS[rating][r[1] % 3], *middles, _REVIEW_CLOSERS[rating][r[4] % 3]]
    return " ".join(sentence.format(**fill) for sentence in sentences)


def json_str(value: str) -> str:
    """A JSON string literal, UTF-8 kept as is (the feed is UTF-8, not ASCII-escaped)."""
    return json.dumps(value, ensure_ascii=False)


def mojibake(text: str) -> str:
    """UTF-8 bytes mis-read as Latin-1: ``Café`` -> ``CafÃ©``."""
    return text.encode("utf-8").decode("latin-1")


def has_mojibake_letters(text: str) -> bool:
    """True when ``text`` has a letter whose mis-decoding is printable (see the module docstring)."""
    return any(ch in MOJIBAKE_LETTERS for ch in text)


_TAG = re.compile(r"<[^>]*>")
_WS = re.compile(r"\s+")
_ENTITIES: tuple[tuple[str, str], ...] = (
    ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&apos;", "'"), ("&nbsp;", " "),
    ("&amp;", "&"),
)


def clean_text(text: str) -> str:
    """The cleaner's text rule, used to state the ``expected`` value of ``fixed`` dirt.

    Tags become one space, the listed entities are decoded (``&nbsp;`` as a plain space; ``&amp;`` last so
    ``&amp;lt;`` stays ``&lt;``), whitespace runs collapse to one space and the ends are trimmed.
    """
    out = _TAG.sub(" ", text)
    for entity, char in _ENTITIES:
        out = out.replace(entity, char)
    return _WS.sub(" ", out).strip()


HTML_VARIANTS = 8


def html_wrap(title: str, variant: int) -> str:
    """Wrap a clean title in tags and entities, the way scraped or CMS-exported titles look."""
    words = title.split(" ")
    head, rest = words[0], " ".join(words[1:])
    variants = (
        f"<b>{title}</b>",
        f"<p>{title}</p>",
        f'<span class="brand">{head}</span>{rest and " " + rest}',
        f"<h1>{head} &amp; Co.</h1> {rest}",
        f"&quot;{title}&quot; <br/>",
        f"<i>{title}</i>&nbsp;&lt;3",
        f"<div><strong>{head}</strong>&#39;s {rest}</div>",
        f'{title} &apos;new&apos; <img src="x.png"/>',
    )
    return variants[variant % len(variants)]


def whitespace_mess(text: str, variant: int) -> str:
    """Leading, trailing or doubled whitespace around/inside ``text`` (the words stay the same)."""
    variant %= 4
    if variant == 0:
        return "  " + text
    if variant == 1:
        return text + " \t"
    if variant == 2 and " " in text:
        return text.replace(" ", "   ", 1)
    return "\t" + text.replace(" ", " \t ", 1) + " "
