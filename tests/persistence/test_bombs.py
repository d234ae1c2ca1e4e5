"""Bounded resources: decompression bombs and max_bytes."""

import io
import json
import re
import struct
import zlib

import h5py
import numpy as np
import pytest

from sk_keras_digits import (
    load,
)
from tests._helpers import IGNORE_CONVERGENCE, read_members
from tests.persistence._support import (
    assert_refused,
    load_measured,
    saved_custom_file,
    wide_network,
)

pytestmark = IGNORE_CONVERGENCE


# -- bounded resources: decompression bombs -----------------------------------
BOMB_SIZE = 1536 * 2**20  # what each bomb inflates to: 1.5 GiB
_ZEROS = bytes(2**20)


def deflated(block, count, prefix=b""):
    """A raw deflate stream of ``prefix`` then ``count`` times ``block``, quickly.

    After a full flush the compressor starts afresh, so every ``block``
    compresses to the same bytes: the stream is one compressed block repeated.

    Returns
    -------
    deflated, crc, size : bytes, int, int
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    body = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    stream = head + body * count + compressor.flush()
    return stream, crc, len(prefix) + count * len(block)


def forged_zip(members):
    """A zip archive of ``members``: (name, data) stored deflated, or (name,
    (deflated, crc, size)) already deflated, or with a forged ``declared`` size
    in the headers: (name, (deflated, crc, size, declared))."""
    out, central = io.BytesIO(), []
    for name, data in members:
        if isinstance(data, bytes):
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            data = (
                compressor.compress(data) + compressor.flush(),
                zlib.crc32(data),
                len(data),
            )
        deflated, crc, size, *declared = data
        declared = declared[0] if declared else size
        encoded = name.encode()
        offset = out.tell()
        fields = (20, 0, 0, 8, 0, 0x21, crc, len(deflated), declared, len(encoded))
        out.write(struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", *fields, 0))
        out.write(encoded)
        out.write(deflated)
        central.append(
            struct.pack(
                "<4s4B4HL2L5H2L",
                b"PK\x01\x02",
                20,
                3,
                20,
                0,
                0,
                8,
                0,
                0x21,
                crc,
                len(deflated),
                declared,
                len(encoded),
                0,
                0,
                0,
                0,
                0o644 << 16,
                offset,
            )
            + encoded
        )
    start = out.tell()
    for entry in central:
        out.write(entry)
    end = (0, 0, len(central), len(central), out.tell() - start, start, 0)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", *end))
    return out.getvalue()


@pytest.fixture(scope="module")
def bomb_stream():
    return deflated(bytes(2**20), BOMB_SIZE // 2**20)


@pytest.fixture(scope="module")
def custom_file(data, tmp_path_factory):
    return saved_custom_file(wide_network, data, tmp_path_factory, "custom")


def _members(path):
    return list(read_members(path).items())


def _replace(members, name, data):
    return [(n, data if n == name else d) for n, d in members]


def _inner(data):
    return list(read_members(data).items())


def make_bombs(dense_file, custom_file, bomb_stream, folder):
    """The bombs of issue 9, each a small file: {name: path}."""
    zeros, crc, size = bomb_stream
    dense, custom = _members(dense_file), _members(custom_file)
    state = _inner(dict(dense)["state.npz"])
    network = sorted(_inner(dict(dense)["model.keras"]))  # config, metadata
    config = json.loads(dict(network)["config.json"])
    bombs = {}
    # 1. An unreferenced member inside state.npz inflating to 1.5 GiB.
    npz = forged_zip([*state, ("bomb.npy", (zeros, crc, size))])
    bombs["npz_member"] = _replace(dense, "state.npz", npz)
    # 2. An outer member whose central directory declares a small size.
    bombs["forged_size"] = _replace(dense, "state.npz", (zeros, crc, size, 1000))
    # 3. config.json padded with 1.5 GiB of spaces (valid JSON).
    text = json.dumps(config).encode()
    spaces = deflated(b" " * 2**20, BOMB_SIZE // 2**20, prefix=text)
    padded = forged_zip([("config.json", spaces), network[1]])
    bombs["padded_config"] = _replace(dense, "model.keras", padded)
    # 4. model.weights.h5 with an unused dataset filling 1.5 GiB when read.
    h5 = io.BytesIO()
    with h5py.File(h5, "w") as file:
        file.create_dataset(
            "unused", shape=(size // 8,), dtype="f8", chunks=(2**17,), fillvalue=1.0
        )
    weights = forged_zip([*network, ("model.weights.h5", h5.getvalue())])
    bombs["hdf5_dataset"] = _replace(dense, "model.keras", weights)
    # 5. A Dense layer of 2,000,000 units: default and custom networks.
    config["config"]["layers"][1]["config"]["units"] = 2_000_000
    wide = forged_zip([("config.json", json.dumps(config).encode()), network[1]])
    bombs["dense_units"] = _replace(dense, "model.keras", wide)
    custom_network = sorted(_inner(dict(custom)["model.keras"]))
    # The hidden layer's width, everywhere the config mentions it.
    text = dict(custom_network)["config.json"].decode()
    assert '"units": 8,' in text and "[null, 8]" in text
    text = text.replace('"units": 8,', '"units": 2000000,')
    custom_config = json.loads(text.replace("[null, 8]", "[null, 2000000]"))
    wide = forged_zip(
        [
            ("config.json", json.dumps(custom_config).encode()),
            custom_network[1],
        ]
    )
    bombs["custom_units"] = _replace(custom, "model.keras", wide)
    paths = {}
    for name, members in bombs.items():
        paths[name] = folder / f"{name}.skd"
        paths[name].write_bytes(forged_zip(members))
    return paths


BOMB_PROBLEMS = {
    "npz_member": "state.npz.*unexpected \\['bomb.npy'\\]|member 'state.npz' declares",
    "forged_size": "member 'state.npz' (is corrupted|holds more than)",
    "padded_config": "member 'model.keras' declares|config.json.*more than",
    "hdf5_dataset": (
        "model.keras.*unexpected \\['model.weights.h5'\\]|member 'model.keras' declares"
    ),
    "dense_units": "config.json describes the layers",
    "custom_units": "architecture's variables",
}


def test_decompression_bombs_are_refused_with_bounded_memory(
    dense_file, custom_file, bomb_stream, tmp_path
):
    """Each bomb: a small file, a clear refusal, little memory, little time."""
    paths = make_bombs(dense_file, custom_file, bomb_stream, tmp_path)
    assert set(paths) == set(BOMB_PROBLEMS)
    for path in paths.values():
        assert path.stat().st_size < 2 * 2**20
    report = load_measured(custom_file, list(paths.values()))
    for name, path in paths.items():
        outcome = report[path]
        assert outcome["problem"] is not None, name
        assert re.search(BOMB_PROBLEMS[name], outcome["problem"]), (name, outcome)
        # The peak resident memory grows by a few MiB at most (a bomb read
        # would add 1.5 GiB).
        assert outcome["rss_growth_mib"] < 64, (name, outcome)
    print({name: report[path] for name, path in paths.items()})


def test_max_bytes_bounds_what_a_file_may_declare(dense, dense_file, data):
    X, _ = data
    for max_bytes in (1000, 3000):
        problem = assert_refused(
            dense_file, f"max_bytes={max_bytes}", max_bytes=max_bytes
        ).problem
        assert "load it with a larger max_bytes" in problem
    loaded = load(dense_file, max_bytes=2**20)
    assert np.array_equal(loaded.predict_proba(X), dense.predict_proba(X))
    with pytest.raises(ValueError, match="max_bytes should be a positive integer"):
        load(dense_file, max_bytes=0)


@pytest.fixture(scope="module")
def repeating_file(data, tmp_path_factory):
    from tests._networks import repeating_network

    return saved_custom_file(repeating_network, data, tmp_path_factory, "repeats")


def with_repeats(source, repeats, folder):
    """A copy of ``source`` (a repeating network's file) in ``folder``, its
    RepeatVector's ``n`` set to ``repeats``: a layer without weights, whose
    outputs per row no array of the file bounds."""
    outer = _members(source)
    network = sorted(_inner(dict(outer)["model.keras"]))  # config, metadata
    config = json.loads(dict(network)["config.json"])
    (layer,) = [
        layer
        for layer in config["config"]["layers"]
        if layer["class_name"] == "RepeatVector"
    ]
    layer["config"]["n"] = repeats
    edited = forged_zip([("config.json", json.dumps(config).encode()), network[1]])
    path = folder / f"repeats-{repeats}.skd"
    path.write_bytes(forged_zip(_replace(outer, "model.keras", edited)))
    return path


@pytest.mark.parametrize("repeats", [3, 10**9, 2**62])
def test_a_network_whose_outputs_outgrow_max_bytes_is_refused_unbuilt(
    repeats, data, repeating_file, tmp_path
):
    """A layer without weights (RepeatVector) whose configuration makes each
    row's outputs huge: a prediction would hold them. The file is refused as
    it is read, before anything is allocated; within max_bytes it loads."""
    path = with_repeats(repeating_file, repeats, tmp_path)
    values = 4 + 4 * repeats + 4 + 10  # Dense, RepeatVector, pooling, Dense
    if repeats == 3:
        X, _ = data
        assert load(path).predict(X).shape == X[:, 0].shape
    else:
        assert_refused(path, f"output {values} values per row.*larger max_bytes")


def test_training_a_loaded_network_too_large_a_step_is_refused(
    data, repeating_file, tmp_path
):
    """A file loaded with a huge max_bytes whose layers output 4 * 2**40
    values per row: a partial_fit step of 50 rows would hold 3.5 PB of
    outputs and gradients. It is refused with the sizes before anything is
    allocated, and the loaded estimator is kept."""
    path = with_repeats(repeating_file, 2**40, tmp_path)
    loaded = load(path, max_bytes=2**50)
    X, y = data
    state = loaded._state
    with pytest.raises(
        ValueError, match=r"training step .* 50 rows .*batch_size \(now 50\)"
    ):
        loaded.partial_fit(X, y)
    assert loaded._state is state
