"""NMFC images (normalised mean-face coordinates, Head2Head's conditioning): the z-buffer rasteriser
(`raster`), NMFC and shaded renders in the faces stage's crop (`render`), and the per-clip
`.nmfc.zip` file format with its preview (`io`). Imports the morphable model, never the fitter."""
