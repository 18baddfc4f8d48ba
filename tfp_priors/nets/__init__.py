"""Networks of the papers' appendices (LARS C.2, Xu et al. B.2)."""
from tfp_priors.nets.conv import ConvBlock
from tfp_priors.nets.conv import ConvDecoder
from tfp_priors.nets.conv import ConvEncoder
from tfp_priors.nets.gated import GatedMLP
from tfp_priors.nets.mlp import MLP
