"""``fastnet serve``: a page to draw on and ``POST /predict``, from the standard library."""

from fastnet.serve.server import MAX_BODY, Predictor, make_server

__all__ = ["MAX_BODY", "Predictor", "make_server"]
