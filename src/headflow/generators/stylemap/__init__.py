"""The `stylemap` family: the Style Mapping module of "Style Transfer for 2D Talking Head Generation"
(face-vid2vid lineage). params (sizes, weights), keypoints (keypoint extractor, pose-expression network,
66-bin angles, rotation convention), model (appearance volume, warping network, generator, file I/O),
data (clips, pairs, the equivariance transform), losses (the step object), train and generate (the stages)."""
