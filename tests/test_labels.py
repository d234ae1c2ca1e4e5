"""Label encoding: the user's labels in, the same labels (and dtype) out."""

import numpy as np
import pytest

from sk_keras_digits._labels import LabelEncoding


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


def test_mixed_label_types_are_refused_clearly():
    with pytest.raises(ValueError, match="mixes label types"):
        LabelEncoding.fit(np.array([1, "a", 2.5], dtype=object))


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
