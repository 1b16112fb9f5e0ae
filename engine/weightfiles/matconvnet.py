"""MatConvNet networks (SimpleNN and DagNN) read from a MATLAB file that ``matlab_file`` has walked.

MatConvNet's import of the Caffe VGG-19 takes RGB input, so these files are
read with ``MATCONVNET`` preprocessing; a file whose own average image
differs from that mean is logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import torch

from engine.errors import WeightsError
from engine.layers import CONV_LAYERS
from engine.weightfiles.checks import as_float32
from engine.weightfiles.limits import first_line
from engine.weightfiles.matlab_file import check_matlab
from engine.weightfiles.record import MATCONVNET, Preprocessing

# All weights messages under one logger, as engine.weights.
log = logging.getLogger("engine.weights")

_MAT_FILTER = re.compile(r"^(conv[1-5]_[1-4])(?:_filter|_weight|_weights|f|_w)$")
_MAT_BIAS = re.compile(r"^(conv[1-5]_[1-4])(?:_bias|_biases|b|_b)$")


def _mat_scalar(value: Any) -> Any:
    """Strip MATLAB's 1x1 wrapping from a loadmat value (cells, structs, strings)."""
    import numpy as np

    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return "".join(value.reshape(-1).tolist())
    return value


def _mat_items(value: Any) -> list[Any]:
    """The elements of a MATLAB cell or struct array, flattened in order."""
    import numpy as np

    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_mat_scalar(item) for item in value.reshape(-1, order="F")]
    return [_mat_scalar(value)]


def _mat_conv(name: str, filters: Any, biases: Any, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np

    filters = np.asarray(filters)
    if filters.dtype.kind != "f" or filters.itemsize > 8 or not 2 <= filters.ndim <= 4:
        raise WeightsError(f"{name} filters are not a 4-D float array", path)
    biases = np.asarray(biases)
    if biases.dtype.kind != "f" or biases.itemsize > 8:
        raise WeightsError(f"{name} biases are not a float array", path)
    # A big-endian MATLAB file gives big-endian arrays, which torch does not take.
    filters = filters.astype(filters.dtype.newbyteorder("="), copy=False)
    biases = biases.astype(biases.dtype.newbyteorder("="), copy=False)
    if filters.ndim < 4:  # MATLAB drops trailing singleton dimensions (one output channel)
        filters = filters.reshape(filters.shape + (1,) * (4 - filters.ndim))
    # MatConvNet stores filters as H x W x in x out (its importer transposes
    # Caffe's W x H blobs back to rows first), and vl_nnconv correlates like
    # PyTorch's conv2d; so only the axis order changes, with no spatial flip.
    weight = torch.from_numpy(np.ascontiguousarray(filters.transpose(3, 2, 0, 1)))
    bias = torch.from_numpy(np.ascontiguousarray(biases.reshape(-1)))
    return as_float32(name, "weight", weight, path), as_float32(name, "bias", bias, path)


# Only what describes the network: the class names and the like are skipped.
_MAT_VARIABLES = ("layers", "params", "net", "meta", "normalization")


def read_matconvnet(
    stream: IO[bytes], path: Path
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str, Preprocessing]:
    check_matlab(stream, path, _MAT_VARIABLES)
    stream.seek(0)
    try:
        import scipy.io

        data = scipy.io.loadmat(
            stream, struct_as_record=False, squeeze_me=False, variable_names=_MAT_VARIABLES
        )
    except NotImplementedError:
        raise WeightsError(
            "is a MATLAB v7.3 (HDF5) file, which cannot be read; save it again with `save(..., '-v7')`", path
        ) from None
    except Exception as error:  # scipy raises many types for damaged files
        raise WeightsError(
            f"is not a readable MATLAB file (truncated or corrupt? {first_line(error)})", path
        ) from None

    root: Any = data
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    try:
        if "layers" not in data and "params" not in data and "net" in data:
            net = _mat_scalar(data["net"])
            root = {field: getattr(net, field) for field in getattr(net, "_fieldnames", [])}
        if "params" in root:  # DagNN: named parameters, e.g. conv1_1_filter / conv1_1_bias
            scheme = "MatConvNet DagNN"
            filters: dict[str, Any] = {}
            biases: dict[str, Any] = {}
            for param in _mat_items(root["params"]):
                name = str(_mat_scalar(getattr(param, "name", "")))
                if match := _MAT_FILTER.match(name):
                    filters[match[1]] = param.value
                elif match := _MAT_BIAS.match(name):
                    biases[match[1]] = param.value
            for conv in CONV_LAYERS:
                if conv in filters and conv in biases:
                    layers[conv] = _mat_conv(conv, filters[conv], biases[conv], path)
                elif conv in filters or conv in biases:
                    raise WeightsError(f"{conv} has only one of its filter and bias parameters", path)
        elif "layers" in root:  # SimpleNN: a cell array of layer structs
            scheme = "MatConvNet SimpleNN"
            for layer in _mat_items(root["layers"]):
                name = str(_mat_scalar(getattr(layer, "name", "")))
                kind = str(_mat_scalar(getattr(layer, "type", "")))
                if kind != "conv" or not re.fullmatch(r"conv[1-5]_[1-4]", name):
                    continue
                if hasattr(layer, "weights"):
                    pair = _mat_items(layer.weights)
                    if len(pair) != 2:
                        raise WeightsError(f"{name} weights should be a {{filters, biases}} pair", path)
                    w, b = pair
                else:  # early MatConvNet releases: separate fields
                    w, b = layer.filters, layer.biases
                if name in layers:
                    raise WeightsError(f"holds more than one layer named {name}", path)
                layers[name] = _mat_conv(name, w, b, path)
        else:
            raise WeightsError(
                "is a MATLAB file without MatConvNet 'layers' or 'params' (not a MatConvNet network)", path
            )
    except WeightsError:  # a ValueError too
        raise
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as error:
        # Fields of the wrong kind: a struct where a string belongs, a number where a cell does.
        raise WeightsError(f"has an unexpected MatConvNet layout ({first_line(error)})", path) from None
    if not layers:
        raise WeightsError("is a MatConvNet file without VGG conv layers named conv1_1 .. conv5_4", path)

    _check_matconvnet_mean(root, path)
    return layers, scheme, MATCONVNET


def _check_matconvnet_mean(root: Mapping[str, Any], path: Path) -> None:
    """Warn if the file's own average image is not the mean MATCONVNET assumes."""
    import numpy as np

    try:
        holder = _mat_scalar(root.get("meta", root.get("normalization")))
        if hasattr(holder, "normalization"):
            holder = _mat_scalar(holder.normalization)
        average = np.asarray(_mat_scalar(holder.averageImage), dtype=np.float64)
    except (AttributeError, TypeError, ValueError):
        return
    if average.size == 0 or average.size % 3:
        return
    # Either one RGB triple or a whole H x W x 3 image: compare the per-channel mean.
    mean = average.reshape(-1, 3).mean(axis=0) if average.shape[-1] == 3 else average.reshape(3)
    if not np.all(np.isfinite(mean)) or np.max(np.abs(mean - np.array(MATCONVNET.mean))) > 1.0:
        log.warning(
            "%s: its average image %s differs from the assumed RGB mean %s",
            path,
            np.round(mean, 3).tolist(),
            MATCONVNET.mean,
        )
