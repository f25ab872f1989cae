/** OpenAPI entries for resume and restart (resume.ts), merged into openapi.ts. */
import { authErrors, error, internal, json } from './openapi-kit.ts';

export function resumeOpenApi(idParam: unknown): { paths: Record<string, unknown> } {
  const notFound = { 404: error('No such instance, or another role’s (`not_found`)') };
  return {
    paths: {
      '/v1/instances/{instance_id}/resume': {
        post: {
          operationId: 'resumeInstance',
          summary: 'Run a failed instance again from the steps that failed; completed steps are not run again (df.resume)',
          parameters: [idParam],
          responses: {
            200: { description: 'Resumed: the instance is running again', content: json('Started') },
            ...authErrors,
            ...notFound,
            409: error('The instance is not failed (`not_failed`), or a worker holds it for a moment (`busy`, try again)'),
            ...internal,
          },
        },
      },
      '/v1/instances/{instance_id}/restart': {
        post: {
          operationId: 'restartInstance',
          summary: 'Start a new instance with the same graph, variables and label (df.restart); the original stays as it is',
          parameters: [idParam],
          responses: {
            201: { description: 'The new instance', content: json('Started'), headers: { Location: { schema: { type: 'string' } } } },
            ...authErrors,
            ...notFound,
            ...internal,
          },
        },
      },
    },
  };
}
