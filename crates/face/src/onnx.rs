//! Reading an ONNX model and folding its block-quantized weights back to `f32`, before either backend sees it.
//!
//! Both models store their weights as int8 with opset 21 `DequantizeLinear` nodes that carry a `block_size`
//! attribute (one scale and zero point per block of `block_size` values along `axis`). tract 0.23 ignores
//! `block_size` and computes wrong weights, and ONNX Runtime 1.22 refuses the models' per-tensor bias nodes that
//! carry one, so every `DequantizeLinear` whose inputs are all initializers is evaluated here, following the ONNX
//! definition `y = (x - zero_point) * scale`, and replaced by an `f32` initializer with the node's output name.
//! What remains is an ordinary float model, the same for both backends.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::{AttributeProto, ModelProto, NodeProto, TensorProto};
use tract_onnx::prelude::*;

use crate::FaceError;

/// A model read from disk with its weight dequantization folded, and its graph's output names in order.
pub(crate) struct FoldedModel {
    pub(crate) proto: ModelProto,
    pub(crate) outputs: Vec<String>,
}

/// Reads and parses the ONNX file at `path` and folds its weight `DequantizeLinear` nodes.
pub(crate) fn read_folded(path: &Path) -> Result<FoldedModel, FaceError> {
    let what = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| FaceError::engine(&format!("reading {what}"), e))?;
    let mut proto = tract_onnx::onnx()
        .proto_model_for_read(&mut bytes.as_slice())
        .map_err(|e| FaceError::engine(&format!("parsing {what}"), e))?;
    drop(bytes);
    fold_weight_dequantization(&mut proto).map_err(|e| FaceError::engine(&format!("rewriting {what}"), e))?;
    let outputs = proto
        .graph
        .as_ref()
        .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default();
    Ok(FoldedModel { proto, outputs })
}

/// A folded model made runnable by tract with its input fixed to `input_shape` (f32); tract's outputs are in the
/// graph's output order.
pub(crate) fn tract_plan(
    model: &FoldedModel,
    input_shape: &[usize],
) -> Result<Arc<TypedRunnableModel>, FaceError> {
    tract_onnx::onnx()
        .model_for_proto_model(&model.proto)
        .and_then(|m| m.with_input_fact(0, f32::fact(input_shape).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| FaceError::engine("loading the model into tract", format!("{e:?}")))
}

/// Replaces every `DequantizeLinear` node whose inputs are all initializers by the `f32` initializer it computes;
/// initializers no longer used by any node are dropped. Returns how many nodes were folded.
pub(crate) fn fold_weight_dequantization(model: &mut ModelProto) -> Result<usize, String> {
    let Some(graph) = model.graph.as_mut() else {
        return Err("the model has no graph".into());
    };
    let initializers: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut folded = Vec::new();
    let mut kept = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let foldable = node.op_type == "DequantizeLinear"
            && (node.domain.is_empty() || node.domain == "ai.onnx")
            && node.output.len() == 1
            && (2..=3).contains(&node.input.len())
            && node.input[..2].iter().all(|name| initializers.contains_key(name))
            && node
                .input
                .get(2)
                .is_none_or(|name| name.is_empty() || initializers.contains_key(name));
        if !foldable {
            kept.push(node);
            continue;
        }
        let tensor = |i: usize| {
            node.input
                .get(i)
                .filter(|name| !name.is_empty())
                .map(|name| &graph.initializer[initializers[name]])
        };
        let (Some(x), Some(scale)) = (tensor(0), tensor(1)) else {
            kept.push(node);
            continue;
        };
        let value =
            dequantize(&node, x, scale, tensor(2)).map_err(|e| format!("node {:?}: {e}", node.name))?;
        folded.push(TensorProto {
            name: node.output[0].clone(),
            dims: x.dims.clone(),
            data_type: DataType::Float as i32,
            raw_data: value.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..TensorProto::default()
        });
    }
    graph.node = kept;
    let count = folded.len();
    graph.initializer.extend(folded);
    // Drop the int8 weights, scales and zero points nobody reads any more.
    let used: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .chain(subgraph_inputs(&graph.node))
        .map(str::to_owned)
        .collect();
    graph.initializer.retain(|t| used.contains(t.name.as_str()));
    // Inputs nothing reads (SFace lists its original float weights as graph inputs, stale since quantization
    // renamed them) would become real inputs of the tract model.
    graph.input.retain(|i| used.contains(&i.name));
    Ok(count)
}

/// Names read by nodes of subgraphs (If / Loop bodies), which may capture outer initializers.
fn subgraph_inputs(nodes: &[NodeProto]) -> impl Iterator<Item = &str> {
    nodes.iter().flat_map(|n| n.attribute.iter()).flat_map(|a| {
        a.g.iter()
            .chain(a.graphs.iter())
            .flat_map(|g| g.node.iter().flat_map(|n| n.input.iter().map(String::as_str)))
            .collect::<Vec<_>>()
    })
}

fn attribute_int(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute
        .iter()
        .find(|a: &&AttributeProto| a.name == name)
        .map(|a| a.i)
}

/// `(x - zero_point) * scale` for a constant `DequantizeLinear`, per tensor, per axis or per block.
fn dequantize(
    node: &NodeProto,
    x: &TensorProto,
    scale: &TensorProto,
    zero_point: Option<&TensorProto>,
) -> Result<Vec<f32>, String> {
    if attribute_int(node, "output_dtype").is_some_and(|t| t != 0 && t != DataType::Float as i32 as i64) {
        return Err("only float output is supported".into());
    }
    let dims: Vec<usize> = to_dims(&x.dims)?;
    let rank = dims.len();
    let values = integer_values(x)?;
    let len: usize = dims.iter().product();
    if values.len() != len {
        return Err(format!("{} values for shape {dims:?}", values.len()));
    }
    let scales = float_values(scale)?;
    let zeros = match zero_point {
        Some(z) => integer_values(z)?,
        None => vec![0; scales.len()],
    };
    if zeros.len() != scales.len() {
        return Err(format!("{} zero points for {} scales", zeros.len(), scales.len()));
    }
    let scale_dims = to_dims(&scale.dims)?;
    if scales.len() == 1 {
        // Per tensor.
        return Ok(values
            .iter()
            .map(|&q| (q - zeros[0]) as f32 * scales[0])
            .collect());
    }
    let axis = attribute_int(node, "axis").unwrap_or(1);
    let axis = if axis < 0 { axis + rank as i64 } else { axis };
    let axis = usize::try_from(axis)
        .ok()
        .filter(|&a| a < rank)
        .ok_or_else(|| format!("axis out of range for rank {rank}"))?;
    let block = usize::try_from(attribute_int(node, "block_size").unwrap_or(0))
        .map_err(|_| "negative block_size".to_owned())?;
    // Strides of x (row-major), and for every element the index of its scale.
    let inner: usize = dims[axis + 1..].iter().product();
    let axis_len = dims[axis];
    let mut out = Vec::with_capacity(len);
    if block == 0 {
        // Per axis: a 1-D scale as long as the axis.
        if scale_dims.len() != 1 || scales.len() != axis_len {
            return Err(format!(
                "per-axis scale of shape {scale_dims:?} for axis {axis} of {dims:?}"
            ));
        }
        for (i, &q) in values.iter().enumerate() {
            let s = (i / inner) % axis_len;
            out.push((q - zeros[s]) as f32 * scales[s]);
        }
    } else {
        // Per block: the scale has x's shape with the axis divided (rounding up) by the block size.
        let blocks = axis_len.div_ceil(block);
        let mut expected = dims.clone();
        expected[axis] = blocks;
        if scale_dims != expected {
            return Err(format!(
                "blocked scale of shape {scale_dims:?}, expected {expected:?} (block {block}, axis {axis})"
            ));
        }
        for (i, &q) in values.iter().enumerate() {
            let outer = i / (inner * axis_len);
            let along = (i / inner) % axis_len;
            let within = i % inner;
            let s = (outer * blocks + along / block) * inner + within;
            out.push((q - zeros[s]) as f32 * scales[s]);
        }
    }
    Ok(out)
}

fn to_dims(dims: &[i64]) -> Result<Vec<usize>, String> {
    dims.iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension in {dims:?}")))
        .collect()
}

/// The values of an integer tensor (int8, uint8, int16, uint16, int32), widened.
fn integer_values(t: &TensorProto) -> Result<Vec<i32>, String> {
    let raw = &t.raw_data;
    let from_raw = !raw.is_empty();
    let kind = DataType::try_from(t.data_type).map_err(|_| format!("unknown data type {}", t.data_type))?;
    Ok(match kind {
        DataType::Int8 if from_raw => raw.iter().map(|&b| i32::from(b as i8)).collect(),
        DataType::Uint8 if from_raw => raw.iter().map(|&b| i32::from(b)).collect(),
        DataType::Int16 if from_raw => raw
            .chunks_exact(2)
            .map(|c| i32::from(i16::from_le_bytes([c[0], c[1]])))
            .collect(),
        DataType::Uint16 if from_raw => raw
            .chunks_exact(2)
            .map(|c| i32::from(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        DataType::Int32 if from_raw => raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DataType::Int8 | DataType::Uint8 | DataType::Int16 | DataType::Uint16 | DataType::Int32 => {
            t.int32_data.clone()
        }
        other => return Err(format!("quantized type {other:?} is not supported")),
    })
}

/// The values of a float tensor (float32 or float16).
fn float_values(t: &TensorProto) -> Result<Vec<f32>, String> {
    let raw = &t.raw_data;
    let kind = DataType::try_from(t.data_type).map_err(|_| format!("unknown data type {}", t.data_type))?;
    Ok(match kind {
        DataType::Float if raw.is_empty() => t.float_data.clone(),
        DataType::Float => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DataType::Float16 if raw.is_empty() => t
            .int32_data
            .iter()
            .map(|&bits| f16::from_bits(bits as u16).to_f32())
            .collect(),
        DataType::Float16 => raw
            .chunks_exact(2)
            .map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
        other => return Err(format!("scale type {other:?} is not supported")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int8(name: &str, dims: &[i64], values: &[i8]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Int8 as i32,
            raw_data: values.iter().map(|&v| v as u8).collect(),
            ..TensorProto::default()
        }
    }

    fn float(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            float_data: values.to_vec(),
            ..TensorProto::default()
        }
    }

    fn node(attributes: &[(&str, i64)]) -> NodeProto {
        NodeProto {
            op_type: "DequantizeLinear".into(),
            input: vec!["q".into(), "s".into(), "z".into()],
            output: vec!["w".into()],
            attribute: attributes
                .iter()
                .map(|&(name, i)| AttributeProto {
                    name: name.into(),
                    i,
                    ..AttributeProto::default()
                })
                .collect(),
            ..NodeProto::default()
        }
    }

    #[test]
    fn blocks_index_scales_along_the_axis() {
        // x is 2×5, blocks of 2 along axis 1: scale and zero point are 2×3 (the last block is short).
        let x = int8("q", &[2, 5], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let s = float("s", &[2, 3], &[1.0, 10.0, 100.0, 2.0, 20.0, 200.0]);
        let z = int8("z", &[2, 3], &[0, 1, 2, 0, 1, 2]);
        let n = node(&[("axis", 1), ("block_size", 2)]);
        let y = dequantize(&n, &x, &s, Some(&z)).unwrap();
        assert_eq!(
            y,
            vec![1.0, 2.0, 20.0, 30.0, 300.0, 12.0, 14.0, 140.0, 160.0, 1600.0]
        );
    }

    #[test]
    fn blocks_along_axis_zero() {
        // x is 4×2, blocks of 2 along axis 0: scale is 2×2.
        let x = int8("q", &[4, 2], &[1, 1, 1, 1, 1, 1, 1, 1]);
        let s = float("s", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let n = node(&[("axis", 0), ("block_size", 2)]);
        let y = dequantize(&n, &x, &s, None).unwrap();
        assert_eq!(y, vec![1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]);
    }

    #[test]
    fn per_axis_and_per_tensor() {
        let x = int8("q", &[2, 3], &[1, 2, 3, 4, 5, 6]);
        let per_axis = dequantize(&node(&[("axis", 0)]), &x, &float("s", &[2], &[1.0, -1.0]), None).unwrap();
        assert_eq!(per_axis, vec![1.0, 2.0, 3.0, -4.0, -5.0, -6.0]);
        let z = int8("z", &[], &[1]);
        let per_tensor = dequantize(&node(&[]), &x, &float("s", &[], &[0.5]), Some(&z)).unwrap();
        assert_eq!(per_tensor, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    }

    #[test]
    fn folding_replaces_the_node_and_keeps_the_output_name() {
        let mut model = ModelProto {
            graph: Some(tract_onnx::pb::GraphProto {
                initializer: vec![
                    int8("q", &[2], &[3, 4]),
                    float("s", &[], &[2.0]),
                    int8("z", &[], &[1]),
                ],
                node: vec![
                    node(&[]),
                    NodeProto {
                        op_type: "Relu".into(),
                        input: vec!["w".into()],
                        output: vec!["y".into()],
                        ..NodeProto::default()
                    },
                ],
                ..Default::default()
            }),
            ..ModelProto::default()
        };
        assert_eq!(fold_weight_dequantization(&mut model).unwrap(), 1);
        let graph = model.graph.unwrap();
        assert_eq!(graph.node.len(), 1);
        assert_eq!(graph.initializer.len(), 1);
        let w = &graph.initializer[0];
        assert_eq!(w.name, "w");
        assert_eq!(float_values(w).unwrap(), vec![4.0, 6.0]);
    }
}
