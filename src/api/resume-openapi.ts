/** The resume and restart routes' definitions (createRoute), implemented by resume.ts. */
import { createRoute } from '@hono/zod-openapi';
import { error, json, locationHeader, notFound, ok, routeErrors } from './openapi-kit.ts';
import { InstanceParams, Started } from './schemas.ts';

const instanceNotFound = notFound('instance');

export const resumeInstance = createRoute({
  method: 'post',
  path: '/v1/instances/{instance_id}/resume',
  operationId: 'resumeInstance',
  summary: 'Run a failed instance again from the steps that failed; completed steps are not run again (df.resume)',
  request: { params: InstanceParams },
  responses: {
    200: ok(Started, 'Resumed: the instance is running again'),
    409: error('The instance is not failed (`not_failed`), or a worker holds it for a moment (`busy`, try again)'),
    ...routeErrors(instanceNotFound),
  },
});

export const restartInstance = createRoute({
  method: 'post',
  path: '/v1/instances/{instance_id}/restart',
  operationId: 'restartInstance',
  summary: 'Start a new instance with the same graph, variables and label (df.restart); the original stays as it is',
  request: { params: InstanceParams },
  responses: {
    201: { description: 'The new instance', content: json(Started), headers: locationHeader },
    ...routeErrors(instanceNotFound),
  },
});
