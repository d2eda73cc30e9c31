import { Type } from 'typebox'

const Check = Type.Union([Type.Literal('ok'), Type.Literal('error')])

export const LiveSchema = Type.Object({ status: Type.Literal('ok') }, { description: 'The process is alive' })

export const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable'), Type.Literal('shutting_down')]),
  checks: Type.Optional(Type.Record(Type.String(), Check))
}, { description: 'Readiness, and each dependency\'s check' })
