"""A BERT encoder's forward pass in plain numpy, for small sentence-embedding models on the CPU.

Why numpy: torch (CPU build) takes 754 MB installed, and onnxruntime needs an ONNX graph that only torch
exports from these weights (building one by hand would add onnxruntime 1.32 and onnx 1.23, about 100 MB
unpacked, on top of the model); numpy is already a dependency. The weights are read straight from the
safetensors format (an 8-byte little-endian header length, a JSON header, raw tensor bytes), so neither
`safetensors` nor torch is needed.

Everything stays float32: NumPy 2 promotes float32 arrays mixed with np.float64 scalars to float64, which
made the pass 4x slower; the constants below are Python floats, which do not promote. Weight matrices are
transposed into contiguous (in, out) arrays once, at load, and the query, key and value projections are
fused into one matrix, so a layer makes four matrix products. With all-MiniLM-L6-v2 on this 2-core machine:
6 ms for one short query, 130 ms for 40 short texts (bench/local_model.py), about 60 ms per 256-token text.

The weights are never written after load and the pass writes only to arrays it allocates, so one encoder
serves several threads at once.
"""

import json
import math
import struct
from dataclasses import dataclass

import numpy as np

SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}
# Additive attention bias for padding keys: exp() of it is exactly 0 in float32, without overflow warnings.
PADDING_BIAS = -1e9
# Abramowitz and Stegun 7.1.26, the erf that torch's vectorised CPU kernels use (|error| < 1.5e-7).
ERF_P = 0.3275911
ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file held in memory, as read-only numpy views of `data`.

    Raises ValueError for a truncated file, a tensor outside the data, or a dtype this reader does not know.
    """
    if len(data) < 8:
        raise ValueError("not a safetensors file: shorter than its 8-byte header length")
    (header_length,) = struct.unpack("<Q", data[:8])
    if 8 + header_length > len(data):
        raise ValueError("not a safetensors file: header length runs past the end of the data")
    header = json.loads(data[8 : 8 + header_length])
    start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"tensor {name!r} has dtype {entry['dtype']}, which this reader does not handle")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end - begin != math.prod(shape) * dtype.itemsize or start + end > len(data):
            raise ValueError(f"tensor {name!r}: its offsets do not match its shape or lie past the end")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=start + begin).reshape(shape)
    return tensors


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int
    num_attention_heads: int
    num_hidden_layers: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, text: str | bytes) -> "BertConfig":
        """From a Hugging Face config.json; ValueError for an activation other than exact GELU."""
        config = json.loads(text)
        if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only BERT with exact GELU and absolute position embeddings is supported")
        return cls(
            hidden_size=config["hidden_size"],
            num_attention_heads=config["num_attention_heads"],
            num_hidden_layers=config["num_hidden_layers"],
            layer_norm_eps=float(config["layer_norm_eps"]),
        )


def _float32(array: np.ndarray) -> np.ndarray:
    """A float32, C-contiguous, writable copy (the copy also lets the file's bytes be freed)."""
    return np.array(array, dtype=np.float32, order="C")


@dataclass(frozen=True)
class LayerNorm:
    weight: np.ndarray
    bias: np.ndarray
    eps: float

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], name: str, eps: float) -> "LayerNorm":
        return cls(_float32(tensors[f"{name}.weight"]), _float32(tensors[f"{name}.bias"]), eps)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        centred = x - x.mean(axis=-1, keepdims=True)
        variance = np.mean(np.square(centred), axis=-1, keepdims=True)
        centred /= np.sqrt(variance + self.eps)
        centred *= self.weight
        centred += self.bias
        return centred


@dataclass(frozen=True)
class Linear:
    weight: np.ndarray  # (in, out): transposed from torch's (out, in) once, so x @ weight needs no copy
    bias: np.ndarray

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], *names: str, scales: tuple[float, ...] = ()) -> "Linear":
        """One layer, or several with the same input fused side by side (query, key, value), each output part
        optionally multiplied by a constant."""
        scales = scales or (1.0,) * len(names)
        weight = np.concatenate([tensors[f"{n}.weight"].T * k for n, k in zip(names, scales, strict=True)], axis=1)
        bias = np.concatenate([tensors[f"{n}.bias"] * k for n, k in zip(names, scales, strict=True)])
        return cls(_float32(weight), _float32(bias))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.weight
        y += self.bias
        return y


@dataclass(frozen=True)
class EncoderLayer:
    query_key_value: Linear  # the query part already scaled by 1/sqrt(head size)
    attention_output: Linear
    attention_norm: LayerNorm
    intermediate: Linear
    output: Linear
    output_norm: LayerNorm

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], index: int, config: "BertConfig") -> "EncoderLayer":
        name = f"encoder.layer.{index}"
        attention = f"{name}.attention.self"
        scale = 1.0 / math.sqrt(config.hidden_size // config.num_attention_heads)
        return cls(
            query_key_value=Linear.from_tensors(
                tensors, f"{attention}.query", f"{attention}.key", f"{attention}.value", scales=(scale, 1.0, 1.0)
            ),
            attention_output=Linear.from_tensors(tensors, f"{name}.attention.output.dense"),
            attention_norm=LayerNorm.from_tensors(tensors, f"{name}.attention.output.LayerNorm", config.layer_norm_eps),
            intermediate=Linear.from_tensors(tensors, f"{name}.intermediate.dense"),
            output=Linear.from_tensors(tensors, f"{name}.output.dense"),
            output_norm=LayerNorm.from_tensors(tensors, f"{name}.output.LayerNorm", config.layer_norm_eps),
        )


class BertEncoder:
    """BERT embeddings and encoder layers, then mean pooling and L2 normalization: a sentence-transformers
    model made of Transformer, mean Pooling and Normalize modules."""

    def __init__(self, tensors: dict[str, np.ndarray], config: BertConfig):
        self.config = config
        self.heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.word_embeddings = _float32(tensors["embeddings.word_embeddings.weight"])
        # Single sentences only: token type 0 everywhere, so it folds into the position embeddings.
        self.position_embeddings = _float32(
            tensors["embeddings.position_embeddings.weight"] + tensors["embeddings.token_type_embeddings.weight"][0]
        )
        self.embeddings_norm = LayerNorm.from_tensors(tensors, "embeddings.LayerNorm", config.layer_norm_eps)
        self.layers = [EncoderLayer.from_tensors(tensors, index, config) for index in range(config.num_hidden_layers)]

    @property
    def max_positions(self) -> int:
        return self.position_embeddings.shape[0]

    def sentence_embeddings(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(batch, hidden) float32 unit vectors for (batch, length) token ids and their 0/1 attention mask."""
        batch, length = input_ids.shape
        if length > self.max_positions:
            raise ValueError(f"{length} tokens, but the model has only {self.max_positions} positions")
        hidden = self.word_embeddings[input_ids] + self.position_embeddings[:length]
        hidden = self.embeddings_norm(hidden.reshape(batch * length, -1))
        padding_bias = np.where(attention_mask[:, None, None, :] > 0, 0.0, PADDING_BIAS).astype(np.float32)
        for layer in self.layers:
            hidden = self._layer(layer, hidden, padding_bias, batch, length)
        mask = attention_mask.astype(np.float32)[:, :, None]
        pooled = (hidden.reshape(batch, length, -1) * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _layer(
        self, layer: EncoderLayer, hidden: np.ndarray, padding_bias: np.ndarray, batch: int, length: int
    ) -> np.ndarray:
        """One encoder layer on (batch * length, hidden) rows."""
        # (batch, length, 3, heads, head size) -> query, key and value, each (batch, heads, length, head size)
        query, key, value = (
            layer.query_key_value(hidden).reshape(batch, length, 3, self.heads, self.head_size).transpose(2, 0, 3, 1, 4)
        )
        scores = query @ key.transpose(0, 1, 3, 2)
        scores += padding_bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch * length, -1)
        attention = layer.attention_output(context)
        attention += hidden
        hidden = layer.attention_norm(attention)
        output = layer.output(gelu(layer.intermediate(hidden)))
        output += hidden
        return layer.output_norm(output)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x), with erf from Abramowitz and Stegun 7.1.26 (numpy has no erf); overwrites x."""
    z = np.abs(x) * (1.0 / math.sqrt(2.0))
    t = 1.0 / (1.0 + ERF_P * z)
    polynomial = ERF_A[4] * t
    for coefficient in reversed(ERF_A[:4]):
        polynomial += coefficient
        polynomial *= t
    np.negative(np.square(z, out=z), out=z)
    np.exp(z, out=z)
    z *= polynomial  # 1 - erf(|x| / sqrt 2)
    np.copysign(1.0 - z, x, out=z)  # erf(x / sqrt 2)
    z += 1.0
    z *= 0.5
    x *= z
    return x
