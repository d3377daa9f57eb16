"""Write a small int8 .tflite file with the TF-Lite flatbuffer schema (the `tflite` package's builder
functions), without TensorFlow: what the TF-Lite converter writes for a fully int8 model.

    w = TFLiteWriter()
    x = w.tensor("input", [1, 28, 28, 1], "int8", scale=1/255, zero=-128)
    k = w.tensor("conv/w", [8, 3, 3, 1], "int8", scale=w_scales, zero=0, data=q_weight, axis=0)
    ...
    w.op("CONV_2D", [x, k, b], [y], "Conv2DOptions", padding="SAME", stride=(1, 1), act="RELU")
    w.save("model.tflite", inputs=[x], outputs=[y])
"""
import flatbuffers
import numpy as np
import tflite

_TYPES = {"float32": (tflite.TensorType.FLOAT32, np.float32), "int8": (tflite.TensorType.INT8, np.int8),
          "int16": (tflite.TensorType.INT16, np.int16), "int32": (tflite.TensorType.INT32, np.int32)}
_ACT = {None: tflite.ActivationFunctionType.NONE, "RELU": tflite.ActivationFunctionType.RELU,
        "RELU6": tflite.ActivationFunctionType.RELU6}
_PAD = {"SAME": tflite.Padding.SAME, "VALID": tflite.Padding.VALID}


class TFLiteWriter:
    def __init__(self):
        self.tensors = []       # dicts
        self.ops = []           # (opcode, inputs, outputs, options kind, options dict)
        self.buffers = [b""]    # buffer 0 is the empty one, by convention

    def tensor(self, name, shape, dtype, scale=None, zero=None, data=None, axis=0):
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data, dtype=_TYPES[dtype][1]).tobytes())
            buf = len(self.buffers) - 1
        self.tensors.append(dict(name=name, shape=list(shape), type=_TYPES[dtype][0], buffer=buf,
                                 scale=None if scale is None else np.atleast_1d(scale).astype(np.float32),
                                 zero=None if zero is None else np.atleast_1d(zero).astype(np.int64),
                                 axis=axis))
        return len(self.tensors) - 1

    def op(self, code, inputs, outputs, options=None, **opts):
        self.ops.append((getattr(tflite.BuiltinOperator, code), list(inputs), list(outputs), options, opts))

    # --------------------------------------------------------------------------------------------
    def save(self, path, inputs, outputs):
        b = flatbuffers.Builder(1024)
        buffers = [self._buffer(b, data) for data in self.buffers]
        tensors = [self._tensor(b, t) for t in self.tensors]
        codes = sorted({o[0] for o in self.ops})
        ops = [self._operator(b, codes.index(c), ins, outs, kind, opts) for c, ins, outs, kind, opts in self.ops]
        t_vec = self._offsets(b, tflite.SubGraphStartTensorsVector, tensors)
        o_vec = self._offsets(b, tflite.SubGraphStartOperatorsVector, ops)
        i_vec = self._ints(b, tflite.SubGraphStartInputsVector, inputs)
        out_vec = self._ints(b, tflite.SubGraphStartOutputsVector, outputs)
        name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, t_vec)
        tflite.SubGraphAddInputs(b, i_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddOperators(b, o_vec)
        tflite.SubGraphAddName(b, name)
        sub = tflite.SubGraphEnd(b)
        code_offs = []
        for c in codes:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(c, 127))
            tflite.OperatorCodeAddBuiltinCode(b, c)
            tflite.OperatorCodeAddVersion(b, 1)
            code_offs.append(tflite.OperatorCodeEnd(b))
        codes_vec = self._offsets(b, tflite.ModelStartOperatorCodesVector, code_offs)
        subs_vec = self._offsets(b, tflite.ModelStartSubgraphsVector, [sub])
        bufs_vec = self._offsets(b, tflite.ModelStartBuffersVector, buffers)
        desc = b.CreateString("mcutrain example (examples/tflite_writer.py)")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_vec)
        tflite.ModelAddSubgraphs(b, subs_vec)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, bufs_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        with open(path, "wb") as f:
            f.write(b.Output())

    @staticmethod
    def _offsets(b, start, offs):
        start(b, len(offs))
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    @staticmethod
    def _ints(b, start, values, prepend="PrependInt32"):
        start(b, len(values))
        for v in reversed(values):
            getattr(b, prepend)(int(v))
        return b.EndVector()

    def _buffer(self, b, data):
        vec = b.CreateNumpyVector(np.frombuffer(data, dtype=np.uint8)) if data else None
        tflite.BufferStart(b)
        if vec is not None:
            tflite.BufferAddData(b, vec)
        return tflite.BufferEnd(b)

    def _tensor(self, b, t):
        q = None
        if t["scale"] is not None:
            sc = b.CreateNumpyVector(t["scale"])
            zp = b.CreateNumpyVector(t["zero"])
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, sc)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            tflite.QuantizationParametersAddQuantizedDimension(b, t["axis"])
            q = tflite.QuantizationParametersEnd(b)
        name = b.CreateString(t["name"])
        shape = b.CreateNumpyVector(np.asarray(t["shape"], dtype=np.int32))
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, t["type"])
        tflite.TensorAddBuffer(b, t["buffer"])
        tflite.TensorAddName(b, name)
        if q is not None:
            tflite.TensorAddQuantization(b, q)
        return tflite.TensorEnd(b)

    def _options(self, b, kind, o):
        if kind is None:
            return None, tflite.BuiltinOptions.NONE
        if kind == "ReshapeOptions":
            shape = b.CreateNumpyVector(np.asarray(o["shape"], dtype=np.int32))
        m = tflite
        getattr(m, kind + "Start")(b)
        if kind in ("Conv2DOptions", "DepthwiseConv2DOptions", "Pool2DOptions"):
            getattr(m, kind + "AddPadding")(b, _PAD[o.get("padding", "VALID")])
            getattr(m, kind + "AddStrideH")(b, o.get("stride", (1, 1))[0])
            getattr(m, kind + "AddStrideW")(b, o.get("stride", (1, 1))[1])
            getattr(m, kind + "AddFusedActivationFunction")(b, _ACT[o.get("act")])
            if kind == "DepthwiseConv2DOptions":
                m.DepthwiseConv2DOptionsAddDepthMultiplier(b, o.get("depth_multiplier", 1))
            if kind == "Pool2DOptions":
                m.Pool2DOptionsAddFilterHeight(b, o["filter"][0])
                m.Pool2DOptionsAddFilterWidth(b, o["filter"][1])
            if kind != "Pool2DOptions":
                getattr(m, kind + "AddDilationHFactor")(b, 1)
                getattr(m, kind + "AddDilationWFactor")(b, 1)
        elif kind in ("AddOptions", "FullyConnectedOptions", "ConcatenationOptions"):
            getattr(m, kind + "AddFusedActivationFunction")(b, _ACT[o.get("act")])
            if kind == "ConcatenationOptions":
                m.ConcatenationOptionsAddAxis(b, o.get("axis", 3))
        elif kind == "ReducerOptions":
            m.ReducerOptionsAddKeepDims(b, bool(o.get("keep_dims", True)))
        elif kind == "SoftmaxOptions":
            m.SoftmaxOptionsAddBeta(b, 1.0)
        elif kind == "LeakyReluOptions":
            m.LeakyReluOptionsAddAlpha(b, float(o.get("alpha", 0.2)))
        elif kind == "ReshapeOptions":
            m.ReshapeOptionsAddNewShape(b, shape)
        return getattr(m, kind + "End")(b), getattr(tflite.BuiltinOptions, kind)

    def _operator(self, b, index, ins, outs, kind, opts):
        options, otype = self._options(b, kind, opts)
        iv = b.CreateNumpyVector(np.asarray(ins, dtype=np.int32))
        ov = b.CreateNumpyVector(np.asarray(outs, dtype=np.int32))
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, index)
        tflite.OperatorAddInputs(b, iv)
        tflite.OperatorAddOutputs(b, ov)
        if options is not None:
            tflite.OperatorAddBuiltinOptionsType(b, otype)
            tflite.OperatorAddBuiltinOptions(b, options)
        return tflite.OperatorEnd(b)
