"""Counts in words: "1 epoch", "2 epochs", "0.5 epochs", "60,000 images"."""


def counted(count, word: str, plural: str | None = None) -> str:
    """``count`` and ``word``, made plural unless the count is exactly one."""
    number = f"{count:,}" if isinstance(count, int) else f"{count:g}"
    return f"{number} {word if count == 1 else plural or word + 's'}"
