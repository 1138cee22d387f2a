"""PTL018 torchvision-pretrained-arg."""

from __future__ import annotations

import libcst as cst

from ptlint.callargs import keyword
from ptlint.fixes import add_import
from ptlint.rule import Edit, Fix, FixSafety, Replace, Rule

WEIGHTS_API_TORCH = (1, 12)  # torchvision 0.13, which introduced `weights=`, requires torch 1.12
FAMILIES = {"detection", "segmentation", "video", "optical_flow", "quantization"}
# Builder -> the weights that `pretrained=True` loaded (torchvision's legacy interface), by subpackage;
# classification builders load `<name>_Weights.IMAGENET1K_V1`.
LEGACY_WEIGHTS: dict[str, dict[str, str]] = {
    "": {
        "alexnet": "AlexNet", "convnext_tiny": "ConvNeXt_Tiny", "convnext_small": "ConvNeXt_Small",
        "convnext_base": "ConvNeXt_Base", "convnext_large": "ConvNeXt_Large", "densenet121": "DenseNet121",
        "densenet161": "DenseNet161", "densenet169": "DenseNet169", "densenet201": "DenseNet201",
        "efficientnet_b0": "EfficientNet_B0", "efficientnet_b1": "EfficientNet_B1",
        "efficientnet_b2": "EfficientNet_B2", "efficientnet_b3": "EfficientNet_B3",
        "efficientnet_b4": "EfficientNet_B4", "efficientnet_b5": "EfficientNet_B5",
        "efficientnet_b6": "EfficientNet_B6", "efficientnet_b7": "EfficientNet_B7",
        "efficientnet_v2_s": "EfficientNet_V2_S", "efficientnet_v2_m": "EfficientNet_V2_M",
        "efficientnet_v2_l": "EfficientNet_V2_L", "googlenet": "GoogLeNet", "inception_v3": "Inception_V3",
        "maxvit_t": "MaxVit_T", "mnasnet0_5": "MNASNet0_5", "mnasnet0_75": "MNASNet0_75",
        "mnasnet1_0": "MNASNet1_0", "mnasnet1_3": "MNASNet1_3", "mobilenet_v2": "MobileNet_V2",
        "mobilenet_v3_large": "MobileNet_V3_Large", "mobilenet_v3_small": "MobileNet_V3_Small",
        "regnet_y_400mf": "RegNet_Y_400MF", "regnet_y_800mf": "RegNet_Y_800MF", "regnet_y_1_6gf": "RegNet_Y_1_6GF",
        "regnet_y_3_2gf": "RegNet_Y_3_2GF", "regnet_y_8gf": "RegNet_Y_8GF", "regnet_y_16gf": "RegNet_Y_16GF",
        "regnet_y_32gf": "RegNet_Y_32GF", "regnet_x_400mf": "RegNet_X_400MF", "regnet_x_800mf": "RegNet_X_800MF",
        "regnet_x_1_6gf": "RegNet_X_1_6GF", "regnet_x_3_2gf": "RegNet_X_3_2GF", "regnet_x_8gf": "RegNet_X_8GF",
        "regnet_x_16gf": "RegNet_X_16GF", "regnet_x_32gf": "RegNet_X_32GF", "resnet18": "ResNet18",
        "resnet34": "ResNet34", "resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152",
        "resnext50_32x4d": "ResNeXt50_32X4D", "resnext101_32x8d": "ResNeXt101_32X8D",
        "resnext101_64x4d": "ResNeXt101_64X4D", "wide_resnet50_2": "Wide_ResNet50_2",
        "wide_resnet101_2": "Wide_ResNet101_2", "shufflenet_v2_x0_5": "ShuffleNet_V2_X0_5",
        "shufflenet_v2_x1_0": "ShuffleNet_V2_X1_0", "shufflenet_v2_x1_5": "ShuffleNet_V2_X1_5",
        "shufflenet_v2_x2_0": "ShuffleNet_V2_X2_0", "squeezenet1_0": "SqueezeNet1_0",
        "squeezenet1_1": "SqueezeNet1_1", "swin_t": "Swin_T", "swin_s": "Swin_S", "swin_b": "Swin_B",
        "swin_v2_t": "Swin_V2_T", "swin_v2_s": "Swin_V2_S", "swin_v2_b": "Swin_V2_B", "vgg11": "VGG11",
        "vgg11_bn": "VGG11_BN", "vgg13": "VGG13", "vgg13_bn": "VGG13_BN", "vgg16": "VGG16", "vgg16_bn": "VGG16_BN",
        "vgg19": "VGG19", "vgg19_bn": "VGG19_BN", "vit_b_16": "ViT_B_16", "vit_b_32": "ViT_B_32",
        "vit_l_16": "ViT_L_16", "vit_l_32": "ViT_L_32",
    },
    "detection": {
        "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights.COCO_V1",
        "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
        "fasterrcnn_mobilenet_v3_large_320_fpn": "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1",
        "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1",
        "fcos_resnet50_fpn": "FCOS_ResNet50_FPN_Weights.COCO_V1",
        "keypointrcnn_resnet50_fpn": "KeypointRCNN_ResNet50_FPN_Weights.COCO_V1",
        "maskrcnn_resnet50_fpn": "MaskRCNN_ResNet50_FPN_Weights.COCO_V1",
        "maskrcnn_resnet50_fpn_v2": "MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1",
        "retinanet_resnet50_fpn": "RetinaNet_ResNet50_FPN_Weights.COCO_V1",
        "retinanet_resnet50_fpn_v2": "RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1",
        "ssd300_vgg16": "SSD300_VGG16_Weights.COCO_V1",
        "ssdlite320_mobilenet_v3_large": "SSDLite320_MobileNet_V3_Large_Weights.COCO_V1",
    },
    "optical_flow": {
        "raft_large": "Raft_Large_Weights.C_T_SKHT_V2", "raft_small": "Raft_Small_Weights.C_T_V2",
    },
    "segmentation": {
        "deeplabv3_resnet50": "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
        "deeplabv3_resnet101": "DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1",
        "deeplabv3_mobilenet_v3_large": "DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
        "fcn_resnet50": "FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
        "fcn_resnet101": "FCN_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1",
        "lraspp_mobilenet_v3_large": "LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
    },
    "video": {
        "mvit_v1_b": "MViT_V1_B_Weights.KINETICS400_V1", "mvit_v2_s": "MViT_V2_S_Weights.KINETICS400_V1",
        "r3d_18": "R3D_18_Weights.KINETICS400_V1", "mc3_18": "MC3_18_Weights.KINETICS400_V1",
        "r2plus1d_18": "R2Plus1D_18_Weights.KINETICS400_V1", "s3d": "S3D_Weights.KINETICS400_V1",
        "swin3d_t": "Swin3D_T_Weights.KINETICS400_V1", "swin3d_s": "Swin3D_S_Weights.KINETICS400_V1",
        "swin3d_b": "Swin3D_B_Weights.KINETICS400_V1",
    },
}
# Builder -> the backbone weights that `pretrained_backbone=True` loaded.
LEGACY_BACKBONES: dict[str, str] = {
    "fasterrcnn_resnet50_fpn": "ResNet50_Weights.IMAGENET1K_V1",
    "fasterrcnn_resnet50_fpn_v2": "ResNet50_Weights.IMAGENET1K_V1",
    "fasterrcnn_mobilenet_v3_large_320_fpn": "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
    "fasterrcnn_mobilenet_v3_large_fpn": "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
    "fcos_resnet50_fpn": "ResNet50_Weights.IMAGENET1K_V1",
    "keypointrcnn_resnet50_fpn": "ResNet50_Weights.IMAGENET1K_V1",
    "maskrcnn_resnet50_fpn": "ResNet50_Weights.IMAGENET1K_V1",
    "maskrcnn_resnet50_fpn_v2": "ResNet50_Weights.IMAGENET1K_V1",
    "retinanet_resnet50_fpn": "ResNet50_Weights.IMAGENET1K_V1",
    "retinanet_resnet50_fpn_v2": "ResNet50_Weights.IMAGENET1K_V1",
    "ssd300_vgg16": "VGG16_Weights.IMAGENET1K_FEATURES",
    "ssdlite320_mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
    "deeplabv3_resnet50": "ResNet50_Weights.IMAGENET1K_V1",
    "deeplabv3_resnet101": "ResNet101_Weights.IMAGENET1K_V1",
    "deeplabv3_mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
    "fcn_resnet50": "ResNet50_Weights.IMAGENET1K_V1", "fcn_resnet101": "ResNet101_Weights.IMAGENET1K_V1",
    "lraspp_mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
}

Spelled = tuple[str, tuple[Edit, ...]]


class TorchvisionPretrainedArg(Rule):
    """torchvision model builders called with the deprecated `pretrained=` argument.

    ## What it does
    Flags `pretrained=` and `pretrained_backbone=` arguments of torchvision model builders
    (`torchvision.models.resnet50(pretrained=True)`, `models.detection.fasterrcnn_resnet50_fpn(...)`),
    however torchvision is imported. Functions of other libraries that take `pretrained`
    (timm's `create_model`, in-file model definitions) are not reported.

    ## Why is this bad?
    torchvision 0.13 replaced the boolean with the `weights=` enum and warns on every call
    with `pretrained`. The boolean does not say which weights are loaded: torchvision has since
    published better weights for many models, and `pretrained=True` keeps silently loading the
    original ones. The enum names them, records their preprocessing and metadata, and is
    the only interface that new models support.

    ## Example
    ```python
    from torchvision import models

    backbone = models.resnet50(pretrained=True)
    scratch = models.resnet18(pretrained=False, num_classes=10)
    ```

    ## Use instead
    ```python
    from torchvision import models

    backbone = models.resnet50(weights=models.ResNet50_Weights.IMAGENET1K_V1)
    scratch = models.resnet18(weights=None, num_classes=10)
    ```

    ## Fix safety
    Safe for literal values: `pretrained=True` becomes the exact weights it loaded (the
    architecture's `IMAGENET1K_V1`, `COCO_V1` for detection models, ...), not `DEFAULT`, which
    may be newer weights; `pretrained=False` becomes `weights=None`. `pretrained_backbone`
    becomes `weights_backbone` the same way. The weights enum is spelled through the module
    the builder comes from, or imported from it. Other values become
    `weights=<enum> if value else None`, an unsafe fix. There is no fix for builders whose
    legacy weights are unknown (quantized models), inside compatibility code, or when the
    targeted torch is older than 1.12 (torchvision 0.13).

    ## References
    - [torchvision multi-weight support API](https://pytorch.org/vision/stable/models.html)
    - [Introducing the multi-weight API](https://pytorch.org/blog/introducing-torchvision-new-multi-weight-support-api/)
    """

    code = "PTL018"
    name = "torchvision-pretrained-arg"
    message = "`pretrained=` is deprecated since torchvision 0.13; pass `weights=` instead"
    fix_safety = FixSafety.SAFE
    severity = "warning"
    triggers = ("pretrained",)
    contract = "E3"

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.qualname(node.func) or ""
        parts = qual.split(".")
        if len(parts) < 3 or parts[:2] != ["torchvision", "models"] or not parts[-1][:1].islower():
            return
        family = parts[2] if len(parts) > 3 and parts[2] in FAMILIES else ""
        for legacy, new in (("pretrained", "weights"), ("pretrained_backbone", "weights_backbone")):
            arg = keyword(node, legacy)
            if arg is not None:
                self._check(node, arg, new, family, ".".join(parts[:-1]), parts[-1])

    def _check(self, call: cst.Call, arg: cst.Arg, new: str, family: str, module: str, builder: str) -> None:
        if new == "weights":
            enum = _legacy_enum(family, builder)
            enum_module = module
        else:
            enum = LEGACY_BACKBONES.get(builder)
            enum_module = "torchvision.models"
        legacy = arg.keyword.value if arg.keyword is not None else ""
        message = f"`{legacy}=` is deprecated since torchvision 0.13; pass `{new}=` instead"
        reason = self._withheld(call, new)
        if reason is not None:
            self.report(arg, f"{message}; fix withheld: {reason}")
            return
        value, safety, edits = self._new_value(arg.value, call, enum, enum_module)
        if value is None:
            self.report(arg, message)
            return
        if isinstance(value, cst.IfExp):
            shown = self.ctx.module.code_for_node(value.body) + " if ... else None"
        else:
            shown = self.ctx.module.code_for_node(value)
        message = f"`{legacy}=` is deprecated since torchvision 0.13; use `{new}={shown}`"
        replacement = arg.with_changes(keyword=cst.Name(new), value=value)
        self.report(arg, message, Fix(f"Use `{new}=`", safety, (Replace(arg, replacement), *edits)))

    def _withheld(self, call: cst.Call, new: str) -> str | None:
        if keyword(call, new) is not None:
            return f"the call also passes `{new}=`"
        guard = self.ctx.compat_guard()
        if guard is not None:
            return guard
        version, source = self.ctx.target_torch()
        if version < WEIGHTS_API_TORCH:
            return f"`{new}=` needs torchvision 0.13 (torch 1.12), {source} is {version[0]}.{version[1]}"
        return None

    def _new_value(
        self, old: cst.BaseExpression, call: cst.Call, enum: str | None, module: str
    ) -> tuple[cst.BaseExpression | None, FixSafety, tuple[Edit, ...]]:
        none = cst.Name("None")
        if isinstance(old, cst.Name) and old.value in ("False", "None"):
            return none, FixSafety.SAFE, ()
        if enum is None or isinstance(old, (cst.BaseString, cst.Integer, cst.Float)):
            return None, FixSafety.NONE, ()
        spelled = self._spell(call, enum, module)
        if spelled is None:
            return None, FixSafety.NONE, ()
        text, edits = spelled
        weights = cst.parse_expression(text)
        if isinstance(old, cst.Name) and old.value == "True":
            return weights, FixSafety.SAFE, edits
        test = old
        if isinstance(old, (cst.IfExp, cst.Lambda, cst.NamedExpr)) and not old.lpar:
            test = old.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return cst.IfExp(test=test, body=weights, orelse=none), FixSafety.UNSAFE, edits

    def _spell(self, call: cst.Call, enum: str, module: str) -> Spelled | None:
        """How to write `module.Enum.MEMBER` here, with the import it needs."""
        cls, member = enum.split(".")
        func = call.func
        if isinstance(func, cst.Attribute) and self.ctx.qualname(func.value) == module:
            prefix = self.ctx.dotted(func.value)
            if prefix is not None:
                return f"{prefix}.{enum}", ()
        spellings = self.ctx.imports.local_names_for(f"{module}.{cls}")
        if spellings:
            return f"{min(spellings, key=len)}.{member}", ()
        if cls in self.ctx.imports.aliases or self.ctx.module_facts().bindings_of(cls):
            return None
        return enum, add_import(self.ctx, f"from {module} import {cls}")


def _legacy_enum(family: str, builder: str) -> str | None:
    found = LEGACY_WEIGHTS.get(family, {}).get(builder)
    if found is not None and family == "":
        return f"{found}_Weights.IMAGENET1K_V1"
    return found
