"""tfp_priors: learned priors for VAEs (LARS, flows, NCP, implicit) in TF2 / TFP."""
import setuptools

setuptools.setup(
    name="tfp_priors",
    version="0.1.0",
    description="Learned priors of variational autoencoders with TensorFlow Probability",
    packages=setuptools.find_packages(include=["tfp_priors", "tfp_priors.*", "trainers", "trainers.*"]),
    package_data={"": ["*.gin"]},
    python_requires=">=3.10",
    # Pinned: the versions measured to work together (see DESIGN.md, "Facts about the stack").
    install_requires=[
        "tensorflow==2.21.0",
        "tensorflow-probability==0.25.0",
        "tf-keras==2.21.0",
        "keras==3.15.1",
        "tensorboard==2.21.0",
        "tensorflow-datasets==4.9.10",
        "importlib_resources",  # tfds 4.9.10 imports it without declaring it
        "gin-config==0.5.0",
        "absl-py==2.5.1",
        "scipy",
        "numpy",
        "matplotlib==3.11.2",  # trainers/plot_onehot.py (Takahashi Figure 1)
    ],
    extras_require={
        "test": ["pytest", "ruff==0.8.4"],
        # benchmarks/peer_pytorch.py only (never the tests or CI): 2.13.0 is the CPU wheel
        # that pip takes here; an open range would pull a multi-GB CUDA build.
        "bench": ["torch==2.13.0", "pythae==0.1.2"],
    },
)
