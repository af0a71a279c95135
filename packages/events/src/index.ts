export { toastFromConfig } from './config.js';
export {
  createEvent,
  type EventInit,
  type EventMessage,
  type EventStatus,
} from './event-message.js';
export {
  type EventHandler,
  JsonlHandler,
  PsqlHandler,
  type RabbitConfig,
  RabbitHandler,
} from './handlers.js';
export { Spool } from './spool.js';
export {
  type DeliveryOptions,
  type HandlerStats,
  type NotifyResult,
  Toast,
  type ToastOptions,
} from './toast.js';
