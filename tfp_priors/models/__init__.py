"""Latent variable models of the papers; each is a `LatentVariableModel` and returns a
`common.Forward` from `forward(x, K)`."""
from tfp_priors.models.common import Forward
from tfp_priors.models.conv_hvae import ConvHVAE
from tfp_priors.models.conv_vae import ConvVAE
from tfp_priors.models.conv_vae import ResnetVAE
from tfp_priors.models.dense_vae import DenseVAE
from tfp_priors.models.gated_vae import GatedVAE
from tfp_priors.models.hvae import HVAE
from tfp_priors.models.latent_variable_model import LatentVariableModel
from tfp_priors.models.resampled_outputs import ResampledOutputs
from tfp_priors.models.vae import VAE
