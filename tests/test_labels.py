"""Label encoding: the user's labels in, the same labels (and dtype) out."""

import numpy as np
import pytest

from sk_keras_digits import _labels


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
    binarizer = _labels.fit_binarizer(y)
    assert _labels.output_activation(binarizer) == activation
    Y = _labels.encode(binarizer, y, np.float32)
    assert Y.shape == (len(y), width) and Y.dtype == np.float32
    decoded = _labels.decode(binarizer, Y)
    np.testing.assert_array_equal(decoded, y)
    assert decoded.dtype == y.dtype


def test_multiclass_encoding_is_one_hot():
    binarizer = _labels.fit_binarizer(np.array([2, 0, 1]))
    np.testing.assert_array_equal(
        _labels.encode(binarizer, np.array([0, 2]), np.float64), [[1, 0, 0], [0, 0, 1]]
    )


def test_classes_argument_fixes_the_encoding_for_partial_fit():
    binarizer = _labels.fit_binarizer(np.array([1, 1]), classes=[0, 1, 2])
    np.testing.assert_array_equal(binarizer.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match=r"labels \[7\] not in classes_"):
        _labels.check_known_labels(binarizer, np.array([1, 7]), "partial_fit")
