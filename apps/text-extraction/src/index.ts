export {
  ExtractDoc,
  MODES,
  type Mode,
  type TextExtractionArgs,
  TextExtractionExecutor,
} from './text-extraction.js';
