"""Label encoding: the user's labels in, the same labels (and dtype) out."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.preprocessing import LabelBinarizer

from sk_keras_digits._labels import LabelEncoding, sorted_labels


@pytest.mark.parametrize(
    "y, activation, width",
    [
        (np.array(["cat", "dog", "cat"]), "logistic", 1),
        (np.array([5, 10, 20, 10]), "softmax", 3),
        (np.array([[1, 0, 1], [0, 1, 1]]), "logistic", 3),
    ],
    ids=["binary-strings", "multiclass-ints", "multilabel"],
)
def test_encode_decode_round_trip(y, activation, width):
    encoding = LabelEncoding.fit(y)
    assert encoding.out_activation == activation
    assert encoding.n_outputs == width
    Y = encoding.encode(y, np.float32)
    assert Y.shape == (len(y), width) and Y.dtype == np.float32
    decoded = encoding.decode(Y)
    np.testing.assert_array_equal(decoded, y)
    assert decoded.dtype == y.dtype


def test_multiclass_encoding_is_one_hot():
    encoding = LabelEncoding.fit(np.array([2, 0, 1]))
    assert encoding.kind == "multiclass"
    np.testing.assert_array_equal(
        encoding.encode(np.array([0, 2]), np.float64), [[1, 0, 0], [0, 0, 1]]
    )


def test_classes_argument_fixes_the_encoding_for_partial_fit():
    encoding = LabelEncoding.fit(np.array([1, 1]), classes=[0, 1, 2])
    np.testing.assert_array_equal(encoding.classes, [0, 1, 2])
    with pytest.raises(ValueError, match=r"labels \[7\] not in classes_"):
        encoding.check_known(np.array([1, 7]), "partial_fit")


MIXED = np.array([1, "a", 2.5], dtype=object)


def test_mixed_label_types_are_refused_clearly():
    with pytest.raises(ValueError, match="^y mixes label types"):
        LabelEncoding.fit(MIXED)
    with pytest.raises(ValueError, match="^classes mixes label types"):
        LabelEncoding.fit(np.array([1, 1]), classes=MIXED)
    with pytest.raises(ValueError, match="^y mixes label types"):
        LabelEncoding.fit(np.array([1, 1]), classes=[1, 2]).check_known(MIXED, "")
    with pytest.raises(ValueError, match="^classes mixes label types"):
        sorted_labels(MIXED, "classes")


@pytest.mark.parametrize("as_object", [False, True])
def test_bytes_labels_are_refused_naming_the_argument(as_object):
    labels = np.array([b"a", b"b"], dtype=object if as_object else None)
    with pytest.raises(TypeError, match="bytes"):
        LabelEncoding.fit(labels)
    with pytest.raises(TypeError, match=r"^classes holds labels .* bytes"):
        LabelEncoding.fit(np.array(["a", "b"]), classes=labels)


@pytest.mark.parametrize(
    "classes, ok",
    [([2, 0, 1], True), (np.arange(3), True), ([0, 1], False), (range(5), False)],
)
def test_multilabel_classes_must_be_the_column_indices(classes, ok):
    """MLPClassifier refuses labels outside ``classes``; both refuse ``[0, 1]``."""
    Y = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0]])
    if ok:
        encoding = LabelEncoding.fit(Y, classes=classes)
        np.testing.assert_array_equal(encoding.classes, [0, 1, 2])
    else:
        with pytest.raises(
            ValueError, match=r"column indices, classes=array\(\[0, 1, 2"
        ):
            LabelEncoding.fit(Y, classes=classes)


@pytest.mark.parametrize(
    "kind, n_outputs, activation",
    [
        ("binary", 1, "logistic"),
        ("multiclass", 3, "softmax"),
        ("multilabel-indicator", 3, "logistic"),
    ],
)
def test_encoding_derives_the_network_output(kind, n_outputs, activation):
    classes = np.array(["no", "yes"]) if kind == "binary" else np.arange(3)
    encoding = LabelEncoding(classes, kind)
    assert encoding.n_outputs == n_outputs
    assert encoding.out_activation == activation
    assert encoding.multilabel == kind.startswith("multilabel")


def test_class_weight_is_checked_against_the_classes():
    encoding = LabelEncoding(np.array([3, 5, 7]), "multiclass")
    for ok in (None, "balanced", {3: 2.0, 7: 0}, {np.int64(5): np.float32(0.5)}):
        encoding.check_class_weight(ok)
    for bad, match in [
        ({4: 1.0}, r"keys \[4\] that are not classes"),
        ({3: -0.5}, "finite non-negative"),
        ({3: float("nan")}, "finite non-negative"),
        ({3: None}, "finite non-negative"),
    ]:
        with pytest.raises(ValueError, match=match):
            encoding.check_class_weight(bad)
    multilabel = LabelEncoding(np.arange(3), "multilabel-indicator")
    multilabel.check_class_weight(None)
    with pytest.raises(ValueError, match="not supported for multilabel"):
        multilabel.check_class_weight("balanced")


# Label sets of every type a user fits on: integers, integral floats, strings,
# booleans, Python objects (strings only) and small unsigned integers.
_LABEL_POOLS = st.sampled_from(
    [
        np.array([-3, 0, 2, 7, 11, 40]),
        np.array([0.0, 1.0, 2.0, -4.0, 1e9]),
        np.array(["a", "b", "cat", "dog", "z", "é"]),
        np.array([False, True]),
        np.array(["x", "y", "zz", "w"], dtype=object),
        np.array([3, 5, 9], dtype=np.uint8),
    ]
)


@st.composite
def _fitted_targets(draw):
    """An encoding fitted as ``fit`` or ``partial_fit`` fits one, and targets."""
    pool = draw(_LABEL_POOLS)
    n_classes = draw(st.integers(1, len(pool)))
    classes = pool[draw(st.permutations(range(len(pool))))[:n_classes]]
    picks = draw(st.lists(st.integers(0, n_classes - 1), min_size=1, max_size=30))
    y = classes[picks]
    declared = draw(st.booleans())  # partial_fit's classes= argument
    return (classes if declared else None), y


@settings(deadline=None)
@given(_fitted_targets(), st.sampled_from([np.float32, np.float64]))
def test_encoding_is_label_binarizers(fitted, dtype):
    """encode and decode give what LabelBinarizer gives, value and dtype."""
    classes, y = fitted
    if classes is None and len(np.unique(y)) < 2:
        return  # fit refuses a single class before encoding
    encoding = LabelEncoding.fit(y, classes)
    binarizer = LabelBinarizer().fit(y if classes is None else classes)
    Y = encoding.encode(y, dtype)
    expected = binarizer.transform(y).astype(dtype)
    assert Y.dtype == expected.dtype and Y.shape == expected.shape
    np.testing.assert_array_equal(Y, expected)
    rng = np.random.default_rng(len(y))
    for proba in (Y, rng.random(Y.shape).astype(dtype), np.full(Y.shape, 0.5, dtype)):
        decoded = encoding.decode(proba)
        flat = proba.ravel() if proba.shape[1] == 1 else proba
        reference = binarizer.inverse_transform(flat)
        assert decoded.dtype == reference.dtype
        np.testing.assert_array_equal(decoded, reference)


def test_encoding_of_unknown_labels_is_label_binarizers():
    """Labels outside the classes encode as LabelBinarizer encodes them."""
    encoding = LabelEncoding.fit(np.array([1, 2, 3]))
    y = np.array([1, 5, 3, 0])
    expected = LabelBinarizer().fit([1, 2, 3]).transform(y)
    np.testing.assert_array_equal(encoding.encode(y, np.float64), expected)
    mixed = np.array(["a", 1], dtype=object)
    with pytest.raises(TypeError) as binarizer_error:
        LabelBinarizer().fit([1, 2, 3]).transform(mixed)
    with pytest.raises(TypeError, match=str(binarizer_error.value)):
        encoding.encode(mixed, np.float64)
