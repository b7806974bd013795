"""The face enhancer: restores the detail a swap model's small face lacks, at the size the frame
needs, without moving the face's identity.

    net = load_enhancer("shipped")                       # the generic model, sha256-checked
    net = finetune_enhancer(net, "work/subject", 1.5)    # on the subject's own photos, ~1.5 min
    big = enhance_faces(net, crops, 256)                 # uint8 BGR crops -> (N, 256, 256, 3)

`network` is the model (no I/O), `degrade` makes the training pairs, `train` the two trainings,
`model` the files, loading and inference.
"""

from synthswap.enhance.model import EnhanceError, enhance_faces, export_enhancer, load_enhancer
from synthswap.enhance.network import EnhanceConfig, EnhanceNet
from synthswap.enhance.train import EnhanceTrainOptions, finetune_enhancer, train_enhancer

__all__ = ["EnhanceConfig", "EnhanceError", "EnhanceNet", "EnhanceTrainOptions", "enhance_faces", "export_enhancer",
           "finetune_enhancer", "load_enhancer", "train_enhancer"]
