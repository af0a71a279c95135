// The test broker: RABBITMQ_URL (CI: the local RabbitMQ, guest/guest), else a testcontainers
// RabbitMQ when a Docker engine answers.
import { dockerAnswers } from '../../../storage/test/support/postgres.js';

let container: Promise<string> | undefined;

export async function rabbitUrl(): Promise<string> {
  const env = process.env.RABBITMQ_URL;
  if (env) return env;
  if (await dockerAnswers()) {
    container ??= (async () => {
      const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
      const c = await new RabbitMQContainer('rabbitmq:4-management').start();
      return c.getAmqpUrl();
    })();
    return container;
  }
  throw new Error(
    'the event tests need RabbitMQ: set RABBITMQ_URL (e.g. amqp://guest:guest@127.0.0.1:5672) or run a Docker engine',
  );
}
