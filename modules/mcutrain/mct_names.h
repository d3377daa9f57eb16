// Names for the core's op types and load problems, shared by the built-in module
// (modmcutrain.c) and the native module (natmod/mcutrain/mcutrain_natmod.c).
#ifndef MCT_NAMES_H
#define MCT_NAMES_H

#include "mcutrain.h"

static inline const char *mct_op_name(uint8_t type) {
    switch (type) {
        case MCT_OP_CONV2D:
            return "conv2d";
        case MCT_OP_FC:
            return "fc";
        case MCT_OP_ADD:
            return "add";
        case MCT_OP_AVGPOOL:
            return "avgpool";
        case MCT_OP_MAXPOOL2D:
            return "maxpool2d";
        case MCT_OP_AVGPOOL2D:
            return "avgpool2d";
        case MCT_OP_LUT:
            return "lut";
        case MCT_OP_CONCAT:
            return "concat";
        case MCT_OP_MUL:
            return "mul";
        default:
            return "?";
    }
}

static inline const char *mct_op_problem(uint32_t p) {
    switch (p) {
        case MCT_P_TYPE:
            return "unknown op type";
        case MCT_P_ACT_INDEX:
            return "activation index out of range";
        case MCT_P_ORDER:
            return "reads an activation not computed before it";
        case MCT_P_TENSOR_INDEX:
        case MCT_P_TENSOR_KIND:
            return "a tensor has the wrong index, type or size";
        case MCT_P_SHAPE:
            return "input and output shapes do not agree";
        case MCT_P_PARAM:
            return "bad kernel, stride or groups";
        case MCT_P_ZERO:
            return "zero point or clamp out of the int8 range";
        case MCT_P_SCALE:
            return "scale not finite and positive";
        case MCT_P_MULTIPLIER:
            return "requantization multiplier or shift out of range";
        case MCT_P_GRAD:
            return "trained tensor without a gradient buffer in the memory plan";
        case MCT_P_FAN_IN:
            return "too many inputs per output for an int32 accumulator";
        case MCT_P_PATCH:
            return "cannot run patch by patch in the patch-based first stage";
        case MCT_P_FUSED:
            return "not a pointwise, depthwise, pointwise block whose backward can run fused";
        case MCT_P_ROWS:
            return "not a frozen conv, depthwise, pointwise block that can run row by row";
        case MCT_P_IN_PLACE:
            return "not a depthwise conv that can write its output over its input";
        default:
            return "inconsistent";
    }
}

#endif
