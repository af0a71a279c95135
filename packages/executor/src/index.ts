export {
  type AnnotateInput,
  type AnnotationAnswer,
  DocumentAnnotatorExecutor,
} from './document-annotator.js';
export { MarieExecutor, type MarieExecutorArgs } from './marie-executor.js';
