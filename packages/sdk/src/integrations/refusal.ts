import { MandateApprovalRequiredError, MandateDeniedError } from '../errors.ts';

/** A refusal the model should see and react to (as opposed to an outage, which the application should). */
export function isRefusal(e: unknown): e is MandateDeniedError | MandateApprovalRequiredError {
  return e instanceof MandateDeniedError || e instanceof MandateApprovalRequiredError;
}

/** The text a framework hands the model as the tool's result when Mandate refuses the call. */
export function refusalText(e: MandateDeniedError | MandateApprovalRequiredError): string {
  const codes = e.reasons.join(', ');
  if (e instanceof MandateApprovalRequiredError) {
    return `${e.message}. The tool did not run. Reason codes: ${codes}. Approval id: ${e.approvalId ?? 'none'}.`;
  }
  return `${e.message}. The tool did not run. Reason codes: ${codes}.`;
}
