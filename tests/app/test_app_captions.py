"""AppTest: image captions wrap between words, and grid captions have words that fit."""

from __future__ import annotations

from app_helpers import assert_clean, goto, load_small_dataset

# A grid image is 60-110 px wide (Augment: 6 in 3/5 of the page; Evaluate: 8 across);
# the caption font fits about 8 characters in 60 px.
MAX_WORD = 8


def _caption_words(app) -> list[str]:
    return [w for image in app.get("image") for c in image.captions if c for w in c.split()]


def test_the_app_keeps_caption_words_whole(app):
    # app.py adds the style sheet before every page (AppTest shows the style-only st.html
    # on the first run only; a browser check found it on Evaluate and Augment).
    style = " ".join(e.proto.body for e in app.get("html"))
    assert '[data-testid="stImageCaption"]' in style
    assert "word-break: normal" in style and "overflow-wrap: normal" in style


def test_grid_captions_have_no_word_wider_than_a_thumbnail(default_model):
    app = load_small_dataset(default_model, per_class=8, size=32)
    goto(app, "augment")
    assert_clean(app)
    words = _caption_words(app)
    assert words, "the grid has captions"
    assert all(len(w) <= MAX_WORD for w in words), max(words, key=len)

    goto(app, "evaluate")
    app.selectbox(key="eval_cell").set_value((0, 1))  # predicted microcalcification
    app.run()
    assert_clean(app)
    words = _caption_words(app)
    assert words, "the cell's images have captions"
    assert all(len(w) <= MAX_WORD for w in words), max(words, key=len)
