"""The five documented failure cases, one module each (each names its thread); importing this registers them."""

from spaces.cases.conv1d_dying_relu import Conv1dDyingRelu
from spaces.cases.denoise_constant_output import DenoiseConstantOutput
from spaces.cases.identity_tiny_variance import IdentityTinyVariance
from spaces.cases.lstm_mean_prediction import LstmMeanPrediction
from spaces.cases.volume_divergence import VolumeDivergence

__all__ = [
    "Conv1dDyingRelu",
    "DenoiseConstantOutput",
    "IdentityTinyVariance",
    "LstmMeanPrediction",
    "VolumeDivergence",
]
