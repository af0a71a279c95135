export { type DetectOptions, dbBoxes, detect } from './detect.js';
export {
  dictionary,
  modelPaths,
  OcrEngine,
  type OcrEngineOptions,
  type OcrLine,
  type OcrPage,
  type OcrWord,
  type PageOrientation,
} from './engine.js';
export { convexHull, minAreaRect, type Point, type Quad } from './geometry.js';
export { cropQuad, type RgbImage, resize, rotate180 } from './image.js';
export { type Box, readingOrder } from './layout.js';
export { type MariePageJson, toMarieJson } from './marie-json.js';
export {
  decode,
  RecognitionQueue,
  type RecognitionStats,
  type Recognized,
  recognize,
} from './recognize.js';
export { characterErrorRate, wordF1 } from './scoring.js';
export {
  chooseSource,
  cropRegion,
  mergeOcr,
  type PageSource,
  readPage,
  SOURCE_THRESHOLDS,
  type SourceChoice,
  type SourceDecision,
  type SourcedPage,
  type TextLayer,
  textLayerPage,
} from './text-layer.js';
export {
  type OcrEngineArgs,
  type OcrEngineMixin,
  type WithOcrEngineClass,
  withOcrEngine,
} from './with-ocr-engine.js';
