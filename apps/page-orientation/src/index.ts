export {
  OrientationDoc,
  type PageOrientationArgs,
  PageOrientationExecutor,
} from './page-orientation.js';
