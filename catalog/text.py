"""Text normalisation shared by search and imports."""
import re

from unidecode import unidecode

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize(text: str) -> str:
    """Lower-case ASCII words separated by single spaces: 'Amélie' -> 'amelie'.

    Newlines are kept so that several titles stored one per line stay apart.
    """
    lines = (_NON_ALNUM.sub(" ", unidecode(line).lower()).strip() for line in (text or "").splitlines())
    return "\n".join(line for line in lines if line)
