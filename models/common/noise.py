"""Salt-and-pepper specks, as in a third of the vn_riders frames (white and black single pixels over the whole
frame; 0.5-4% of pixels measured against a 3x3 median, see `edge-agent/infer/src/impulse.rs`)."""
import numpy as np


def salt_and_pepper(rng, img):
    """`img` (H x W x 3 uint8) with 0.5-4% of its pixels set to black or white, at its own resolution."""
    img = img.copy()
    nrng = np.random.default_rng(rng.randrange(1 << 31))
    specks = nrng.random(img.shape[:2]) < rng.uniform(0.005, 0.04)
    img[specks] = nrng.choice(np.array([[0, 0, 0], [255, 255, 255]], np.uint8), int(specks.sum()))
    return img
